#!/usr/bin/env python3
"""Writes the seed inputs of the fuzz targets added after the first three (valid encodings of
sample sessions, cookies and login bodies, each target's input format as its source describes),
into corpus/<target>/seed-*. Run once from fuzz/: python3 seeds.py. libFuzzer mutates from
these; `cargo fuzz cmin` may later drop the ones its own inputs cover."""

import base64
import hashlib
import hmac
import json
import os
import struct

ID = "fuzzfuzzfuzzfuzzfuzzfuzzfuzzfuzz"
OTHER_ID = "AbCdEfGhIjKlMnOpQrStUvWxYz012345-_aa"
CURRENT = b"fuzz-current-key-0123456789abcdef0123456789abcdef"
OLDER = b"fuzz-older-key-0123456789abcdef0123456789abcdef01"
EXPRESS = [b"keyboard cat", b"old secret"]


def write(target, name, data):
    os.makedirs(f"corpus/{target}", exist_ok=True)
    with open(f"corpus/{target}/seed-{name}", "wb") as f:
        f.write(data)


def signed(key, sid, escaped=True):
    tag = base64.b64encode(hmac.new(key, sid.encode(), hashlib.sha256).digest()).decode().rstrip("=")
    if escaped:
        return "s%3A" + sid + "." + tag.replace("+", "%2B").replace("/", "%2F")
    return "s:" + sid + "." + tag


def cookies():
    for target, name, keys in [("cookie_default", "sid", [CURRENT, OLDER]),
                               ("cookie_express", "connect.sid", EXPRESS)]:
        current, older = keys
        for i, sid in enumerate([ID, OTHER_ID]):
            write(target, f"current-{i}", f"{name}={signed(current, sid)}".encode())
            write(target, f"older-{i}", f"{name}={signed(older, sid)}".encode())
            write(target, f"raw-{i}", f"{name}={signed(current, sid, False)}".encode())
            write(target, f"quoted-{i}", f'{name}="{signed(current, sid)}"'.encode())
            write(target, f"among-{i}", f"a=1; {name}=s%3Abad.tag; b=2; {name}={signed(current, sid)}; c=3".encode())
            write(target, f"headers-{i}", f"a=1\n{name}=nope\n{name}={signed(older, sid)}".encode())
        write(target, "id", ID.encode())
        write(target, "forged", f"{name}={signed(b'another key entirely', ID)}".encode())
    write("cookie_default", "stored", json.dumps(
        {"cookie": {"originalMaxAge": 3600000, "idleTimeout": None}, "user": "JohnDoe"}).encode())
    write("cookie_default", "tombstone", b'{"cookie":{"regenerated":true}}')
    write("cookie_express", "stored", json.dumps(
        {"cookie": {"originalMaxAge": 3600000, "expires": "2026-11-27T22:30:21.093Z",
                    "httpOnly": True, "path": "/"}, "username": "JohnDoe"}).encode())
    write("cookie_express", "fraction", b'{"cookie":{"originalMaxAge":-1.5e300,"idleTimeout":1e400}}')


def login():
    for name, body in [("ok", {"username": "JohnDoe", "password": "password123"}),
                       ("wrong", {"username": "JohnDoe", "password": "password12"}),
                       ("extra", {"username": "JohnDoe", "password": "password123", "x": [1]}),
                       ("shape", {"username": 1, "password": None})]:
        write("login_body", name, json.dumps(body).encode())
    write("login_body", "malformed", b'{"username": "JohnDoe", "password": "pass')
    write("login_body", "escaped", b'{"username":"John\\u0044oe","password":"password\\u0031\\u00323"}')


MILLIS = 1_764_000_000_000
# A session's data as the JSON codec writes it (format 1), and the same values as the
# MessagePack codec writes them: its format byte 0x01, then a map of three entries.
DATA = json.dumps({"v": 1, "data": {"username": "JohnDoe", "n": 3, "xs": [1.5, None, True]}}).encode()
PACKED = (b"\x01\x83\xa8username\xa7JohnDoe\xa1n\x03\xa2xs\x93\xcb" + struct.pack(">d", 1.5) + b"\xc0\xc3")


def express_text(rust_side):
    cookie = {"originalMaxAge": 86400000, "expires": "2026-11-27T22:30:21.093Z",
              "httpOnly": True, "path": "/"}
    if rust_side:
        cookie.update({"rsVersion": "7", "rsCreated": MILLIS})
    return json.dumps({"cookie": cookie, "username": "JohnDoe"}, separators=(",", ":")).encode()


def redis():
    def header(layout, version):
        return struct.pack(">BqQq", layout, MILLIS, version, MILLIS + 86_400_000)
    for codec, data in [(0, PACKED), (2, DATA)]:
        write("redis_decode", f"v1-{codec}", bytes([codec]) + header(1, 3) + data)
        principal = b"user-42"
        write("redis_decode", f"v2-{codec}", bytes([codec]) + header(2, 3)
              + struct.pack(">qH", MILLIS + 90_000_000, len(principal)) + principal + data)
    write("redis_decode", "express-rust", b"\x01" + express_text(True))
    write("redis_decode", "express-node", b"\x01" + express_text(False))


def sql():
    for codec, data in [(0, PACKED), (2, DATA)]:
        columns = struct.pack(">qqq", MILLIS, MILLIS + 86_400_000, 3)
        write("sql_decode", f"none-{codec}", bytes([codec]) + columns + b"\xff" + data)
        write("sql_decode", f"principal-{codec}", bytes([codec]) + columns + b"\x07user-42" + data)
    times = struct.pack(">qq", MILLIS + 86_400_000, MILLIS)
    for name, rust_side in [("express-rust", True), ("express-node", False)]:
        text = express_text(rust_side)
        write("sql_decode", name, b"\x01" + times + hashlib.md5(text).digest() + text)


def bson_doc(fields):
    body = b""
    for key, (kind, value) in fields:
        k = key.encode() + b"\x00"
        if kind == "string":
            v = value.encode() + b"\x00"
            body += b"\x02" + k + struct.pack("<i", len(v)) + v
        elif kind == "binary":
            body += b"\x05" + k + struct.pack("<i", len(value)) + b"\x00" + value
        elif kind == "date":
            body += b"\x09" + k + struct.pack("<q", value)
        elif kind == "int64":
            body += b"\x12" + k + struct.pack("<q", value)
        elif kind == "int32":
            body += b"\x10" + k + struct.pack("<i", value)
        elif kind == "null":
            body += b"\x0a" + k
    return struct.pack("<i", len(body) + 5) + body + b"\x00"


def mongo():
    for codec, data in [(0, PACKED), (2, DATA)]:
        base = [("_id", ("string", ID)), ("data", ("binary", data)),
                ("created", ("date", MILLIS)), ("expires", ("date", MILLIS + 86_400_000))]
        write("mongo_decode", f"native-{codec}", bytes([codec]) + bson_doc(base + [("version", ("int64", 3))]))
        write("mongo_decode", f"principal-{codec}", bytes([codec]) + bson_doc(
            base + [("version", ("int32", 3)), ("principal", ("string", "user-42"))]))
    for name, rust_side in [("express-rust", True), ("express-node", False)]:
        write("mongo_decode", name, b"\x01" + bson_doc([
            ("session", ("string", express_text(rust_side).decode())),
            ("expires", ("date", MILLIS + 86_400_000)), ("now", ("date", MILLIS))]))


if __name__ == "__main__":
    cookies()
    login()
    redis()
    sql()
    mongo()
