"""What the Nedlia Lambda functions share: calling the domain services through the internal
ALB (urllib, JSON, X-Amzn-Trace-Id) and the partial batch response of the SQS workers.
Standard library only, like the functions themselves."""
