"""Raw-socket Runtime API clients: what the emulator and the machine's loopback can do at best.

Usage:
    python raw_client.py stream HOST:PORT WRITE_SIZE TOTAL_SIZE preframed|framed
        one invocation streamed in WRITE_SIZE chunks: ``preframed`` sends chunks framed once in
        advance (the loopback ceiling); ``framed`` frames each write as a minimal plain-Python
        streaming loop must (one ``sendmsg`` of size line, data and CRLF per write); prints the
        CPU seconds the writes took
    python raw_client.py warm HOST:PORT COUNT
        COUNT small invocations back to back, each response streamed on a connection of its own
        as a streaming runtime must: the emulator's ceiling for warm round trips; prints the CPU
        seconds the loop took (the floor of a Python runtime's own CPU per invocation)
"""

import socket
import sys
import time

NEXT = b"GET /2018-06-01/runtime/invocation/next HTTP/1.1\r\nHost: x\r\n\r\n"


def _connect(host: str, port: int) -> socket.socket:
    connection = socket.create_connection((host, port))
    connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return connection


def _next(control: socket.socket) -> str:
    control.sendall(NEXT)
    head = b""
    while b"\r\n\r\n" not in head:
        head += control.recv(65536)
    head, _, body = head.partition(b"\r\n\r\n")
    length = 0
    request_id = ""
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        name = name.lower()
        if name == b"lambda-runtime-aws-request-id":
            request_id = value.strip().decode()
        elif name == b"content-length":
            length = int(value)
    while len(body) < length:
        body += control.recv(65536)
    return request_id


def _response_head(request_id: str) -> bytes:
    return (
        f"POST /2018-06-01/runtime/invocation/{request_id}/response HTTP/1.1\r\nHost: x\r\n"
        "Lambda-Runtime-Function-Response-Mode: streaming\r\n"
        "Transfer-Encoding: chunked\r\n\r\n"
    ).encode()


def stream(host: str, port: int, write: int, total: int, mode: str) -> None:
    control = _connect(host, port)
    request_id = _next(control)
    connection = _connect(host, port)
    connection.sendall(_response_head(request_id))
    block = b"x" * write
    started = time.process_time()
    if mode == "preframed":
        chunk = b"%x\r\n" % write + block + b"\r\n"
        for _ in range(total // write):
            connection.sendall(chunk)
    else:
        crlf = b"\r\n"
        sendmsg = connection.sendmsg
        for _ in range(total // write):
            sendmsg((b"%x\r\n" % len(block), block, crlf))
    cpu = time.process_time() - started
    connection.sendall(b"0\r\n\r\n")
    connection.recv(65536)
    connection.close()
    print(cpu)


def warm(host: str, port: int, count: int) -> None:
    control = _connect(host, port)
    started = time.process_time()
    for _ in range(count):
        request_id = _next(control)
        connection = _connect(host, port)
        connection.sendall(_response_head(request_id) + b"2\r\nok\r\n0\r\n\r\n")
        connection.recv(65536)
        connection.close()
    print(time.process_time() - started)


def main() -> None:
    mode, address = sys.argv[1], sys.argv[2]
    host, _, port = address.rpartition(":")
    if mode == "stream":
        stream(host, int(port), int(sys.argv[3]), int(sys.argv[4]), sys.argv[5])
    else:
        warm(host, int(port), int(sys.argv[3]))


if __name__ == "__main__":
    main()
