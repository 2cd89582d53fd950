"""The PostgreSQL wire protocol by hand, for what libpq never sends: raw
messages, and a session past SCRAM authentication."""
import base64
import hashlib
import hmac
import os
import socket
import struct


def startup_packet(user="postgres", db="shop"):
    body = struct.pack("!I", 196608) + f"user\0{user}\0database\0{db}\0\0".encode()
    return struct.pack("!I", len(body) + 4) + body


def msg(t, body=b""):
    return t + struct.pack("!I", len(body) + 4) + body


def read_msg(s):
    head = b""
    while len(head) < 5:
        chunk = s.recv(5 - len(head))
        assert chunk, "connection closed"
        head += chunk
    n = struct.unpack("!I", head[1:5])[0] - 4
    body = b""
    while len(body) < n:
        chunk = s.recv(n - len(body))
        assert chunk, "connection closed"
        body += chunk
    return head[:1], body


def raw_session(port, user, password, db="shop"):
    """A socket past authentication (SCRAM-SHA-256, as the test server asks)
    and the first ReadyForQuery: for what libpq never sends."""
    s = socket.create_connection(("127.0.0.1", port), timeout=20)
    s.sendall(startup_packet(user, db))
    t, body = read_msg(s)
    assert t == b"R" and struct.unpack("!I", body[:4])[0] == 10, (t, body)
    nonce = base64.b64encode(os.urandom(18)).decode()
    first = f"n=,r={nonce}"
    s.sendall(msg(b"p", b"SCRAM-SHA-256\0" + struct.pack("!I", len(first) + 3) + b"n,," + first.encode()))
    t, body = read_msg(s)
    server_first = body[4:].decode()
    f = dict(kv.split("=", 1) for kv in server_first.split(","))
    salted = hashlib.pbkdf2_hmac("sha256", password.encode(), base64.b64decode(f["s"]), int(f["i"]))
    client_key = hmac.new(salted, b"Client Key", "sha256").digest()
    final = f"c=biws,r={f['r']}"
    auth = f"{first},{server_first},{final}".encode()
    sig = hmac.new(hashlib.sha256(client_key).digest(), auth, "sha256").digest()
    proof = base64.b64encode(bytes(a ^ b for a, b in zip(client_key, sig))).decode()
    s.sendall(msg(b"p", f"{final},p={proof}".encode()))
    while True:
        t, body = read_msg(s)
        assert t != b"E", body
        if t == b"Z":
            return s
