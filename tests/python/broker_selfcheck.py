"""Checks that the suite's Kafka broker keeps every record it acknowledges, before any test relies
on it: starts the broker (Tansu on SQLite storage) in a temporary directory on a free loopback
port, produces N records with an ordinary client (confluent-kafka: idempotent, acks=all), and
reads every partition back. Exits 1, naming the broker, unless exactly the N acknowledged records
are there.

usage: broker_selfcheck.py TANSU_BINARY [N]
"""

import socket
import subprocess
import sys
import tempfile
import time

from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

TOPIC = "selfcheck"
PARTITIONS = 3


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_listening(port, broker):
    for _ in range(200):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            if broker.poll() is not None:
                sys.exit(f"broker self-check: the broker exited with {broker.returncode}")
            time.sleep(0.05)
    sys.exit("broker self-check: the broker did not listen")


def main():
    tansu = sys.argv[1]
    n = int(sys.argv[2]) if len(sys.argv) > 2 else 20000
    port = free_port()
    url = f"tcp://127.0.0.1:{port}"
    with tempfile.TemporaryDirectory() as work:
        broker = subprocess.Popen(
            [tansu, "broker", "--listener-url", url, "--advertised-listener-url", url,
             "--storage-engine", "sqlite://tansu.db"],
            cwd=work, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            wait_listening(port, broker)
            check(f"127.0.0.1:{port}", n, tansu)
        finally:
            broker.kill()
            broker.wait()


def check(bootstrap, n, tansu):
    admin = AdminClient({"bootstrap.servers": bootstrap})
    for future in admin.create_topics([NewTopic(TOPIC, PARTITIONS, 1)]).values():
        future.result(timeout=30)
    producer = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True,
                         "acks": "all", "linger.ms": 5})
    acked = set()
    failed = []

    def report(err, msg):
        if err is None:
            acked.add(msg.value())
        else:
            failed.append(str(err))

    started = time.time()
    for i in range(n):
        while True:
            try:
                producer.produce(TOPIC, key=str(i % 97), value=b"record-%d" % i,
                                 on_delivery=report)
                break
            except BufferError:
                producer.poll(0.1)
        producer.poll(0)
    producer.flush(120)
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "selfcheck",
                         "enable.auto.commit": False, "auto.offset.reset": "earliest"})
    consumer.assign([TopicPartition(TOPIC, p, 0) for p in range(PARTITIONS)])
    seen = set()
    deadline = time.time() + 120
    while len(seen) < len(acked) and time.time() < deadline:
        message = consumer.poll(0.5)
        if message is not None and message.error() is None:
            seen.add(message.value())
    consumer.close()
    elapsed = time.time() - started
    lost = len(acked - seen)
    if failed or len(acked) != n or lost:
        sys.exit(
            f"broker self-check FAILED: {tansu} acknowledged {len(acked)} of {n} records "
            f"({len(failed)} delivery errors, first: {failed[:1]}) and {lost} acknowledged ones "
            f"are missing from the topic: this broker cannot prove that nothing is lost")
    print(f"broker self-check: {tansu} kept {len(seen)} of {n} acknowledged records "
          f"({elapsed:.1f} s)")


if __name__ == "__main__":
    main()
