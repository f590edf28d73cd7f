"""The trust dialog for a jump host's unknown key names the jump host and the host behind it, and
saves the key under the jump host's own name in its own known_hosts file (the real-stack side:
tests/realstack/test_ssh_proxyjump_real.py)."""

from __future__ import annotations

import paramiko
from support.app import settle

from virttui.drivers.sshhostkeys import UnknownHostKey
from virttui.screens.confirm import TrustScreen


async def test_the_trust_dialog_names_the_jump_host_it_is_about(app, demo):
    hv2 = demo.drivers[1]
    pending = UnknownHostKey("[127.0.0.1]:2222", paramiko.ECDSAKey.generate(), "/nonexistent/bastion_known",
                             label="bastion (jump to hv2)")
    trusted: list[UnknownHostKey] = []
    hv2.pending_host_key = lambda: pending
    hv2.trust_host_key = trusted.append
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        app.host_keys.check(hv2.uri)
        await settle(pilot)
        assert isinstance(app.screen, TrustScreen)
        shown = " ".join(str(widget.render()) for widget in app.screen.query("#dialog-title, #dialog-body"))
        assert "Unknown host key: bastion (jump to hv2)" in shown
        assert "The SSH host key of bastion (jump to hv2) is not in /nonexistent/bastion_known" in shown
        assert pending.fingerprint in shown
        await pilot.press("tab", "enter")  # to Trust, then Enter
        await settle(pilot)
        assert trusted == [pending] and trusted[0].host == "[127.0.0.1]:2222"  # saved under the hop's name
