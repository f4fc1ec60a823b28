#!/usr/bin/env python3
"""Answers ICMP echo requests late, or not at all: a delaying peer for the tests.

Run it inside a network namespace whose kernel does not answer echoes itself
(`sysctl net.ipv4.icmp_echo_ignore_all=1`):

    icmp_responder.py --control FILE [--jitter-ms 50] [--max-seconds 300]

FILE holds the delay in milliseconds, re-read for every request; "drop" answers nothing.
Prints READY once its raw socket is open; exits after --max-seconds.
"""
import argparse
import random
import socket
import threading
import time


def checksum(b):
    if len(b) % 2:
        b += b"\0"
    s = sum(int.from_bytes(b[i:i + 2], "big") for i in range(0, len(b), 2))
    s = (s >> 16) + (s & 0xFFFF)
    s += s >> 16
    return (~s) & 0xFFFF


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--control", required=True)
    ap.add_argument("--jitter-ms", type=float, default=0)
    ap.add_argument("--max-seconds", type=float, default=300)
    a = ap.parse_args()
    sock = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
    sock.settimeout(0.5)
    print("READY", flush=True)
    end = time.monotonic() + a.max_seconds
    while time.monotonic() < end:
        try:
            data, addr = sock.recvfrom(65535)
        except socket.timeout:
            continue
        ihl = (data[0] & 0x0F) * 4
        icmp = data[ihl:]
        if len(icmp) < 8 or icmp[0] != 8:  # echo requests only
            continue
        try:
            with open(a.control) as f:
                word = f.read().strip()
        except OSError:
            word = "0"
        if word == "drop":
            continue
        delay = max(0.0, (float(word or 0) + random.uniform(-a.jitter_ms, a.jitter_ms)) / 1000.0)
        body = b"\x00\x00\x00\x00" + icmp[4:]
        reply = body[:2] + checksum(body).to_bytes(2, "big") + body[4:]
        threading.Timer(delay, sock.sendto, (reply, (addr[0], 0))).start()


if __name__ == "__main__":
    main()
