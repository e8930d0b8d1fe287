"""Run work in several threads at once, as several workers or requests would."""

import threading

from django.db import connections


def at_once(work, count: int = 4) -> list:
    """Run `work` in `count` threads released together; return results, raise any error.

    Each thread has its own database connection, closed when it ends.
    """
    barrier = threading.Barrier(count)
    results, errors = [], []

    def run():
        try:
            barrier.wait()
            results.append(work())
        except Exception as exc:  # surfaced below
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == [], errors
    return results
