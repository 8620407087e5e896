"""devenv's own HTTP/1.1 server for the endpoints on the invoke path (the Lambda Runtime API,
the Invoke API): httptools parsing, keep-alive, answers in order."""
