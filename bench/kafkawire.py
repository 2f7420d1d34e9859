# SPDX-License-Identifier: Apache-2.0
"""One plain socket to one Kafka broker and the request framing the bench needs: the
connection that run.py's KafkaWire (ListOffsets, CreateTopics) and mockbroker.py's
Fetcher (the tap's Fetch loop) both talk over.

    c = Connection("127.0.0.1:9092", "ringtail-bench", timeout=10.0)
    body = c.request(api_key, version, request_body)   # the response after its correlation id
    c.close()

Request header v1 (api key, version, correlation id, client id); responses are read
whole into one buffer with recv_into() and returned as a memoryview past the
correlation id, so a large Fetch response is not copied again. Standard library only,
and no import of run.py: the tap runs in a process of its own.
"""
import socket
import struct


def kstr(s):
    """A Kafka STRING: int16 length, then the bytes (s: str or bytes)."""
    b = s.encode() if isinstance(s, str) else s
    return struct.pack(">h", len(b)) + b


class Connection:
    """A connection to the first broker of a bootstrap list ("HOST:PORT,...")."""

    def __init__(self, bootstrap, client_id, timeout=10.0, rcvbuf=None):
        host, _, port = bootstrap.split(",")[0].rpartition(":")
        self.sock = socket.create_connection((host, int(port)), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if rcvbuf:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self.client = kstr(client_id)
        self.corr = 0

    def close(self):
        self.sock.close()

    def _recv(self, n):
        buf = bytearray(n)
        view = memoryview(buf)
        got = 0
        while got < n:
            k = self.sock.recv_into(view[got:], n - got)
            if not k:
                raise ConnectionError("broker closed the connection")
            got += k
        return buf

    def request(self, api_key, version, body):
        """Sends one request and returns its response after the correlation id (a
        memoryview); ConnectionError if the answer is not to this request."""
        self.corr += 1
        msg = struct.pack(">hhi", api_key, version, self.corr) + self.client + body
        self.sock.sendall(struct.pack(">i", len(msg)) + msg)
        (size,) = struct.unpack(">i", self._recv(4))
        resp = self._recv(size)
        (corr,) = struct.unpack_from(">i", resp, 0)
        if corr != self.corr:
            raise ConnectionError(f"correlation id {corr}, expected {self.corr}")
        return memoryview(resp)[4:]


def topic_partitions(r, pos, entry):
    """The partition entries of a response's [topic [partition]] arrays, which start at
    pos: entry(r, pos) reads one partition's entry and returns (what it read, the
    position after it). Returns what was read, in order (topic names are skipped)."""
    out = []
    (ntopics,) = struct.unpack_from(">i", r, pos)
    pos += 4
    for _ in range(ntopics):
        (nlen,) = struct.unpack_from(">h", r, pos)
        pos += 2 + nlen
        (nparts,) = struct.unpack_from(">i", r, pos)
        pos += 4
        for _ in range(nparts):
            item, pos = entry(r, pos)
            out.append(item)
    return out
