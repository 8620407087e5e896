"""placement-service: owns videos and placements; publishes placement.created."""
