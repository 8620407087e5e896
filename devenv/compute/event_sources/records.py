"""The event shapes functions receive (pure): SQS records and EventBridge events, as AWS writes them."""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import struct
from typing import TYPE_CHECKING, Any, Callable, Mapping


if TYPE_CHECKING:
    pass

log = logging.getLogger(__name__)


# The system attributes every SQS record carries, in the order AWS writes them; others
# (AWSTraceHeader, MessageGroupId, SequenceNumber, ...) follow when the message has them.
RECORD_ATTRIBUTES = ("ApproximateReceiveCount", "SentTimestamp", "SenderId",
                     "ApproximateFirstReceiveTimestamp")
# The fields of an EventBridge event as delivered to a target, in AWS's order.
EVENT_FIELDS = ("version", "id", "detail-type", "source", "account", "time", "region",
                "resources", "detail")

SqsClientFactory = Callable[[], Any]  # returns a boto3 SQS client (or a fake of one)



# ---------------------------------------------------------------- the event shapes (pure)


def sqs_record(message: Mapping[str, Any], *, queue_arn: str, region: str) -> dict[str, Any]:
    """One ReceiveMessage message as a record of Lambda's SQS event.

    ``message`` is as boto3 returns it when asked for all system and message attributes.
    """
    system = message.get("Attributes") or {}
    attributes = {name: system[name] for name in RECORD_ATTRIBUTES if name in system}
    attributes.update((k, v) for k, v in sorted(system.items()) if k not in attributes)
    sent = message.get("MessageAttributes") or {}
    body = message.get("Body", "")
    record: dict[str, Any] = {
        "messageId": message["MessageId"],
        "receiptHandle": message["ReceiptHandle"],
        "body": body,
        "attributes": attributes,
        "messageAttributes": {name: _record_attribute(value) for name, value in sent.items()},
        "md5OfBody": message.get("MD5OfBody") or hashlib.md5(body.encode()).hexdigest(),
    }
    if sent:
        record["md5OfMessageAttributes"] = (message.get("MD5OfMessageAttributes")
                                            or md5_of_message_attributes(sent))
    record["eventSource"] = "aws:sqs"
    record["eventSourceARN"] = queue_arn
    record["awsRegion"] = region
    return record


def _record_attribute(value: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if "StringValue" in value:
        out["stringValue"] = value["StringValue"]
    if "BinaryValue" in value:
        out["binaryValue"] = _base64(value["BinaryValue"])
    out["stringListValues"] = list(value.get("StringListValues") or [])
    out["binaryListValues"] = [_base64(v) for v in value.get("BinaryListValues") or []]
    out["dataType"] = value["DataType"]
    return out


def _base64(value: bytes | str) -> str:
    """boto3 hands binary values over decoded; the event carries them base64-encoded."""
    return base64.b64encode(value).decode() if isinstance(value, bytes) else value


def md5_of_message_attributes(attributes: Mapping[str, Mapping[str, Any]]) -> str:
    """SQS's MD5OfMessageAttributes: for each attribute, by name, the length-prefixed name,
    data type, a transport byte (1 string, 2 binary) and the length-prefixed value."""
    digest = hashlib.md5()

    def field(data: bytes) -> None:
        digest.update(struct.pack(">I", len(data)) + data)

    for name in sorted(attributes):
        value = attributes[name]
        field(name.encode())
        field(value["DataType"].encode())
        if "StringValue" in value:
            digest.update(b"\x01")
            field(value["StringValue"].encode())
        elif "BinaryValue" in value:
            binary = value["BinaryValue"]
            digest.update(b"\x02")
            field(binary if isinstance(binary, bytes) else base64.b64decode(binary))
    return digest.hexdigest()


def eventbridge_event(body: str, *, account: str) -> bytes:
    """The EventBridge event a rule delivered to a queue, exactly as AWS hands it to a Lambda
    target: version, id, detail-type, source, account, time, region, resources, detail.

    moto leaves ``account`` out of what it sends to SQS, so it is filled in from the queue's
    account (the rule's: they are one account here). A body that is not an EventBridge event
    goes through unchanged.
    """
    try:
        event = json.loads(body)
    except ValueError:
        return body.encode()
    if not isinstance(event, dict) or "detail-type" not in event or "source" not in event:
        return body.encode()
    defaults = {"version": "0", "account": account, "resources": [], "detail": {}}
    return json.dumps({k: event.get(k, defaults.get(k)) for k in EVENT_FIELDS}).encode()


