"""Where components run: the state folder, processes, ports and the supervisor's record."""
