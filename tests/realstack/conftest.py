"""Real-stack tests: the private libvirt, QEMU, sanlock and sshd hosts of realstack.harness."""

from realstack.fixtures import (  # noqa: F401 - the fixtures and hooks this tier's tests use
    bastions,
    pytest_collection_modifyitems,
    pytest_configure,
    pytest_unconfigure,
    realstack,
    sanlock_stack,
    ssh_client,
    throttled_lease_stack,
)
