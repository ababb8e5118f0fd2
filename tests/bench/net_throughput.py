#!/usr/bin/env python3
"""TCP throughput of a payload's outbound connection (tests/bench/run.sh, docs/performance.md).

  net_throughput.py recv ADDR N   listen on ADDR (port printed on the first line), take N
                                  connections one after another; per connection print one JSON
                                  line {"bytes": B, "seconds": S, "mib_s": R}, timed from the
                                  first byte to the sender's end, by the receiver.
  net_throughput.py send ADDR PORT MIB   send MIB MiB in 1 MiB writes, wait for the receiver's
                                         one-byte acknowledgement.
"""
import json, socket, sys, time

def recv(addr, n):
    l = socket.socket()
    l.bind((addr, 0))
    l.listen(4)
    print(l.getsockname()[1], flush=True)
    buf = bytearray(1 << 20)
    for _ in range(n):
        c, _ = l.accept()
        got, t0 = 0, None
        while True:
            k = c.recv_into(buf)
            if not k:
                break
            if t0 is None:
                t0 = time.monotonic()
            got += k
        secs = time.monotonic() - (t0 or time.monotonic())
        c.sendall(b"k")
        c.close()
        print(json.dumps({"bytes": got, "seconds": round(secs, 4),
                          "mib_s": round(got / (1 << 20) / secs, 1) if secs else None}), flush=True)

def send(addr, port, mib):
    s = socket.create_connection((addr, int(port)), timeout=30)
    chunk = b"x" * (1 << 20)
    for _ in range(int(mib)):
        s.sendall(chunk)
    s.shutdown(socket.SHUT_WR)
    s.recv(1)

if __name__ == "__main__":
    if sys.argv[1] == "recv":
        recv(sys.argv[2], int(sys.argv[3]))
    else:
        send(*sys.argv[2:5])
