"""`devenv tour`: a first-day walkthrough of any stack, driven by its own config.

`architecture` explains what devenv.yaml declares (routes, functions and their event
sources, the ALB and its services, buses and rules, queues and DLQs, storage); `trip` turns
the spans of one request into steps, hop by hop, with the sentences the stack's `tour:`
section gives; `run` sends that request and follows its trace. The first two are pure; the
CLI renders the steps, nothing here prints.
"""
