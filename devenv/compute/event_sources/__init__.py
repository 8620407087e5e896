"""SQS event source mappings and EventBridge function targets: the pollers that feed functions.

Both run in the compute server's asyncio loop and reach SQS through boto3 on a dedicated
thread pool (``PollerThreadPool``), a thread per poller: a poller has at most one SQS call in
flight.

**SQS -> Lambda** (``SqsEventSourceMapping``), as AWS's pollers do it:

- Pollers long-poll the queue (``WaitTimeSeconds`` 20, up to 10 messages a receive).
- A batch gathers up to ``batch_size`` messages, until ``maximum_batching_window`` seconds
  have passed since its first message arrived, or until one more record would take the event
  past Lambda's 6 MB synchronous payload limit (the extra records start the next batch). With
  no window the batch is what one receive returned.
- The function is invoked synchronously with ``{"Records": [...]}`` in AWS's SQS event shape
  (``sqs_record``). What happens next is ``decide``: success deletes the batch; with
  ``report_batch_item_failures`` the response's ``batchItemFailures`` are kept and the rest
  deleted (an invalid response counts as the whole batch failing, as AWS documents); a
  function error keeps the whole batch, which reappears after the queue's visibility timeout
  (its visibility is not touched) and reaches the queue's DLQ after ``maxReceiveCount``
  receives, through the queue's own redrive; a refused invoke (throttled, unknown function)
  keeps the batch and the poller backs off.
- Concurrency: 5 pollers to start (fewer if the limit is lower), one more each time a batch
  comes back full (at most one per 0.2 s, AWS's 300 a minute), down to the starting number
  again when a long poll returns nothing. The limit is the smaller of the mapping's
  ``maximum_concurrency`` and the function's ``reserved_concurrency``; with neither it is
  ``LOCAL_MAX_POLLERS``, the Lambda runtime's local unreserved concurrency (AWS allows
  1,000). A reserved concurrency of 0 still gets one poller: AWS keeps polling such a
  function and every invoke is throttled, so its messages reappear and redrive, and the same
  happens here. Refused invokes shrink the mapping back to its starting pollers.
- A message received again while its batch is still gathering (a visibility timeout shorter
  than the window, which AWS advises against) stays one record, with its newest receipt
  handle.
- A queue that does not exist (not deployed yet, the emulator restarted) or an emulator that
  does not answer never ends a poller: it logs one line, retries with backoff, and logs again
  when the queue is back.

**EventBridge -> Lambda** (``EventBridgeFunctionTarget``): devenv deploys a rule's function
target as an SQS target on the function's internal queue (``devenv.aws.resources``). Its
poller hands each event to ``Invoker.invoke_async`` (Lambda's async semantics: retries and
the on-failure destination live in the runtime) and deletes the message once handed over.
The function receives exactly the EventBridge event (``eventbridge_event``). A refused
handover that may succeed later (throttled, a 5xx) puts the message back with a growing
delay; one that cannot (unknown function, too large) is logged and dropped, as EventBridge
drops an event it cannot deliver when the target has no dead-letter queue.

**Stopping** is prompt: ``stop()`` cancels the pollers and does not wait for a long poll in
flight; whatever such a receive still returns, and every gathered message not yet handed to
the function, is made visible again at once. A batch whose invocation was interrupted is left
to its visibility timeout, as a failed one is. The abandoned receive's thread ends by itself
within ``poll_wait`` seconds, and never delays the process's exit (``PollerThreadPool``).

``EventSourceManager`` builds every poller of a stack from its config, starts and stops them.
"""

from devenv.compute.event_sources.records import eventbridge_event, md5_of_message_attributes, sqs_record
from devenv.compute.event_sources.outcomes import BatchResponse, Decision, Verdict, decide, parse_batch_response
from devenv.compute.event_sources.batching import BatchGatherer, INITIAL_POLLERS, LOCAL_MAX_POLLERS, concurrency_limit
from devenv.compute.event_sources.threads import PollerThreadPool
from devenv.compute.event_sources.pollers import Backoff, EventBridgeFunctionTarget, SqsEventSourceMapping
from devenv.compute.event_sources.manager import EventSourceManager

__all__ = ['eventbridge_event', 'md5_of_message_attributes', 'sqs_record', 'BatchResponse', 'Decision', 'Verdict', 'decide', 'parse_batch_response', 'BatchGatherer', 'INITIAL_POLLERS', 'LOCAL_MAX_POLLERS', 'concurrency_limit', 'PollerThreadPool', 'Backoff', 'EventBridgeFunctionTarget', 'SqsEventSourceMapping', 'EventSourceManager']
