#!/usr/bin/env python3
"""Writes the seed corpora under tests/fuzz/corpus/ (checked in).

Each seed is a small, valid input of its fuzz target, built from protobuf
text with Debian's protoc (`protoc --encode`), so that libFuzzer starts from
inputs that reach deep into the code instead of failing the first parse.
Run from the repository root: python3 tests/fuzz/make_seeds.py
"""
import os
import struct
import subprocess
import zlib

ROOT = "tests/fuzz/corpus"


def encode(message_type, proto_file, text):
    return subprocess.run(
        ["protoc", "-I.", "--encode=" + message_type, proto_file],
        input=text.encode(), stdout=subprocess.PIPE, check=True).stdout


def record(selector, payload):
    """One record of tests/fuzz/fuzz_input.h."""
    return bytes([selector]) + struct.pack("<H", len(payload)) + payload


def frame(payload):
    """storage/record_codec.h framing: version 1, CRC-32 big-endian."""
    version = b"\x01"
    return version + struct.pack(">I", zlib.crc32(version + payload)) + payload


def write(target, name, data):
    os.makedirs(os.path.join(ROOT, target), exist_ok=True)
    with open(os.path.join(ROOT, target, name), "wb") as f:
        f.write(data)


def channel(text):
    return encode("spate.ChannelCommand", "proto/command.proto", text)


def meta(text):
    return encode("spate.MetaCommand", "proto/command.proto", text)


def raft(text):
    return encode("spate.raft.Message", "proto/raft.proto", text)


def request_seeds():
    pub = encode("spate.PubMsg", "proto/streaming.proto",
                 'client_id: "c1" subject: "orders.eu" guid: "g1" '
                 'data: "hello" headers { key: "k" value: "v" }')
    write("request", "pub", b"\x00\x10" + pub)
    write("request", "pub_oversize", b"\x00\x00" + pub)
    sub = encode("spate.SubscriptionRequest", "proto/streaming.proto",
                 'client_id: "c1" subject: "orders" q_group: "workers" '
                 'max_in_flight: 10 ack_wait_in_secs: 30 '
                 'durable_name: "d1" start_position: SEQUENCE_START '
                 'start_sequence: 5')
    write("request", "subscribe", b"\x01\x00" + sub)
    unsub = encode("spate.UnsubscribeRequest", "proto/streaming.proto",
                   'client_id: "c1" subject: "orders" '
                   'subscription_id: "m1" durable_name: "d1"')
    write("request", "unsubscribe", b"\x02\x00" + unsub)
    connect = encode("spate.ConnectRequest", "proto/streaming.proto",
                     'client_id: "c-1_x" conn_id: "0123456789abcdef"')
    write("request", "connect", b"\x03\x00" + connect)
    write("request", "name", b"\x04\x00orders.eu.>")


def fsm_seeds():
    publish = channel(
        'publish { entries { client_id: "c1" guid: "g1" data: "a" '
        'timestamp_ns: 10 } entries { client_id: "c1" guid: "g2" '
        'data: "bb" headers { key: "k" value: "v" } timestamp_ns: 11 } }')
    subscribe = channel(
        'subscribe { client_id: "c1" conn_id: "x" durable_name: "d" '
        'max_in_flight: 5 ack_wait_ms: 1000 start_sequence: 1 '
        'member_id: "m1" sent_lease: 4 }')
    queue = channel(
        'subscribe { client_id: "c2" q_group: "q" max_in_flight: 1 '
        'ack_wait_ms: 1000 start_sequence: 2 member_id: "m2" }')
    progress = channel(
        'progress { subs { sub_id: 1 acked: 1 acked: 2 redelivered: 2 '
        'last_sent: 3 } }')
    close = channel('close_subscription { sub_id: 1 member_id: "m1" '
                    'last_sent: 2 }')
    delete = channel('delete_subscription { sub_id: 2 member_id: "m2" }')
    trim = channel("trim { now_ns: 1000000000000 }")
    connect = meta('connect { client_id: "c1" conn_id: "x" time_ns: 5 }')
    create = meta('create_channel { name: "orders" limits { max_msgs: 3 } '
                  'time_ns: 6 replicas: 1 replicas: 2 replicas: 3 }')
    nodes = meta('upsert_node { nodes { node_id: 1 } nodes { node_id: 2 } }')
    close_client = meta('close { client_id: "c1" conn_id: "x" }')
    write("fsm", "publish_subscribe_ack",
          record(0, publish) + record(0, subscribe) + record(0, progress) +
          record(0xff, b"") + record(0, close) + record(0, subscribe))
    write("fsm", "queue_trim",
          record(0, queue) + record(0, publish) + record(0, publish) +
          record(0, trim) + record(0, delete))
    write("fsm", "meta",
          record(1, connect) + record(1, create) + record(1, nodes) +
          record(0xff, b"") + record(1, close_client))


def raft_seeds():
    vote = raft("type: MSG_VOTE_RESPONSE group: 7 from: 2 to: 1 term: 1")
    prevote = raft("type: MSG_PRE_VOTE_RESPONSE group: 7 from: 2 to: 1 "
                   "term: 1")
    append = raft("type: MSG_APPEND group: 7 from: 2 to: 1 term: 2 "
                  "log_term: 0 index: 0 commit: 1 "
                  'entries { term: 2 index: 1 data: "x" } '
                  'entries { term: 2 index: 2 data: "y" }')
    heartbeat = raft("type: MSG_HEARTBEAT group: 7 from: 2 to: 1 term: 2 "
                     "commit: 2")
    append_resp = raft("type: MSG_APPEND_RESPONSE group: 7 from: 2 to: 1 "
                       "term: 2 index: 2")
    snapshot = raft("type: MSG_SNAPSHOT group: 7 from: 3 to: 1 term: 3 "
                    "snapshot { metadata { index: 10 term: 3 "
                    "conf_state { voters: 1 voters: 2 voters: 3 } } }")
    # Selector 0x14: step with fixed addressing; 0x34 from peer 3.
    write("raft", "elect_and_replicate",
          record(2, b"") + record(3, b"") + record(0x14, prevote) +
          record(3, b"") + record(0x14, vote) + record(3, b"") +
          record(1, b"cmd") + record(3, b"") + record(0x14, append_resp) +
          record(3, b"") + record(0, b"") + record(3, b""))
    write("raft", "follow",
          record(4, append) + record(3, b"") + record(4, heartbeat) +
          record(3, b"") + record(0, b"") + record(0, b"") + record(3, b""))
    write("raft", "snapshot", record(0x34, snapshot) + record(3, b""))


def record_seeds():
    stored = encode("spate.StoredMessage", "proto/records.proto",
                    'sequence: 3 timestamp_ns: 9 guid: "g" data: "payload" '
                    'headers { key: "k" value: "v" } crc32: 7')
    write("record", "stored_message", b"\x00" + frame(stored))
    sub = encode("spate.SubscriptionRecord", "proto/records.proto",
                 'sub_id: 2 durable_name: "d" ack_floor: 4 acked: 6 '
                 'last_sent: 8 redelivery_counts { key: 5 value: 1 } '
                 'members { }')
    write("record", "subscription", b"\x02" + frame(sub))
    entry = encode("spate.raft.Entry", "proto/raft.proto",
                   'term: 2 index: 9 data: "cmd"')
    write("record", "raft_entry", b"\x07" + frame(entry))
    hard = encode("spate.raft.HardState", "proto/raft.proto",
                  "term: 5 vote: 2 commit: 4")
    write("record", "hard_state", b"\x08" + frame(hard))
    # Keys: raft log key of group 7 index 9 (space byte ignored by parse).
    write("record", "log_key", b"\x07" + struct.pack(">QQ", 7, 9))


if __name__ == "__main__":
    request_seeds()
    fsm_seeds()
    raft_seeds()
    record_seeds()
