"""A minimal QMP client for the campaign runner: one UNIX-socket connection to `rehome run --qmp`,
commands answered in order, events collected on a reader thread with the time they arrived.

Not thread-safe for commands (one caller); events may be read from any thread.
"""
import json
import socket
import threading
import time


class QmpError(Exception):
    pass


class Qmp:
    def __init__(self, path, timeout=5.0):
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._sock.settimeout(timeout)
        self._sock.connect(path)
        self._file = self._sock.makefile("rb")
        self._lock = threading.Lock()
        self._cond = threading.Condition(self._lock)
        self._replies = []
        self._events = []
        self._closed = False
        greeting = self._read_message()
        if greeting is None or "QMP" not in greeting:
            raise QmpError(f"no QMP greeting on {path}")
        self._sock.settimeout(None)
        self._reader = threading.Thread(target=self._read_loop, daemon=True)
        self._reader.start()
        self.execute("qmp_capabilities")

    def _read_message(self):
        line = self._file.readline()
        if not line:
            return None
        return json.loads(line)

    def _read_loop(self):
        while True:
            try:
                message = self._read_message()
            except (OSError, ValueError):
                message = None
            with self._cond:
                if message is None:
                    self._closed = True
                    self._cond.notify_all()
                    return
                if "event" in message:
                    message["_received"] = time.time()
                    self._events.append(message)
                else:
                    self._replies.append(message)
                self._cond.notify_all()

    def execute(self, command, arguments=None, timeout=5.0):
        """Runs a command; its `return` value. QmpError on an error reply, a closed connection or
        no reply within `timeout` seconds."""
        request = {"execute": command}
        if arguments is not None:
            request["arguments"] = arguments
        with self._cond:
            if self._closed:
                raise QmpError("QMP connection closed")
            try:
                self._sock.sendall(json.dumps(request).encode() + b"\r\n")
            except OSError as e:  # rehome closed the monitor (it is ending)
                self._closed = True
                raise QmpError(f"QMP connection closed ({e.strerror})") from e
            deadline = time.monotonic() + timeout
            while not self._replies:
                left = deadline - time.monotonic()
                if self._closed or left <= 0:
                    raise QmpError(f"no reply to {command}")
                self._cond.wait(left)
            reply = self._replies.pop(0)
        if "error" in reply:
            raise QmpError(f"{command}: {reply['error'].get('desc', reply['error'])}")
        return reply.get("return")

    def events(self, name=None):
        """The events received so far (oldest first), optionally only those called `name`."""
        with self._lock:
            return [e for e in self._events if name is None or e["event"] == name]

    def wait_event(self, name, timeout, after=0):
        """The first event `name` with index >= `after` among events(name), within `timeout`."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                found = [e for e in self._events if e["event"] == name]
                if len(found) > after:
                    return found[after]
                left = deadline - time.monotonic()
                if self._closed or left <= 0:
                    return None
                self._cond.wait(left)

    @property
    def closed(self):
        with self._lock:
            return self._closed

    def close(self):
        try:
            self._sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self._sock.close()
