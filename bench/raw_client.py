"""The loopback ceiling: one invocation served by a raw socket that sends pre-framed chunks.

Usage: python raw_client.py HOST:PORT WRITE_SIZE TOTAL_SIZE
"""

import socket
import sys


def main() -> None:
    address, write, total = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    host, _, port = address.rpartition(":")
    control = socket.create_connection((host, int(port)))
    control.sendall(b"GET /2018-06-01/runtime/invocation/next HTTP/1.1\r\nHost: x\r\n\r\n")
    head = b""
    while b"\r\n\r\n" not in head:
        head += control.recv(65536)
    request_id = next(
        line.split(b":", 1)[1].strip().decode()
        for line in head.split(b"\r\n")
        if line.lower().startswith(b"lambda-runtime-aws-request-id")
    )
    stream = socket.create_connection((host, int(port)))
    stream.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    stream.sendall(
        f"POST /2018-06-01/runtime/invocation/{request_id}/response HTTP/1.1\r\nHost: x\r\n"
        "Lambda-Runtime-Function-Response-Mode: streaming\r\n"
        "Transfer-Encoding: chunked\r\n\r\n".encode()
    )
    chunk = b"%x\r\n" % write + b"x" * write + b"\r\n"
    for _ in range(total // write):
        stream.sendall(chunk)
    stream.sendall(b"0\r\n\r\n")
    stream.recv(65536)
    stream.close()


if __name__ == "__main__":
    main()
