import pytest

from virttui.drivers.errors import InvalidURI
from virttui.drivers.uri import parse_uri, redacted


def test_parses_ssh_uri_with_user_port_and_params():
    uri = parse_uri("qemu+ssh://root@hv1:2222/system?keyfile=/k&no_verify=1")
    assert (uri.driver, uri.transport, uri.user, uri.host, uri.port, uri.path) == (
        "qemu", "ssh", "root", "hv1", 2222, "/system")
    assert uri.param("keyfile") == "/k"
    assert uri.param("no_verify") == "1"
    assert uri.local_uri == "qemu:///system"
    assert uri.is_remote


def test_local_and_test_uris():
    assert not parse_uri("qemu:///system").is_remote
    test = parse_uri("test:///default")
    assert test.is_test and test.path == "/default" and test.host == ""


def test_ipv6_host():
    assert parse_uri("qemu+ssh://[::1]:22/system").host == "::1"


@pytest.mark.parametrize("bad", ["", "nonsense", "qemu+carrier://h/system", "qemu+ssh://h:99999/system", "://x"])
def test_bad_uris_raise_invalid_uri_naming_the_uri(bad):
    with pytest.raises(InvalidURI) as info:
        parse_uri(bad)
    assert "\n" not in str(info.value)


def test_a_password_in_the_uri_is_refused_without_being_echoed():
    with pytest.raises(InvalidURI) as caught:
        parse_uri("qemu+ssh://root:s3cret@hv1/system")
    assert "s3cret" not in str(caught.value) and "root:***@hv1" in str(caught.value)


@pytest.mark.parametrize("uri", ["qemu+ssh://root:pa@ss@hv1/system", "qemu+ssh://root:se/cr@ss@hv1/system",
                                 "qemu+ssh://root%3Apass@hv1/system", "qemu+ssh://root:pass:x@hv1/system"])
def test_no_part_of_a_password_is_echoed_or_taken_for_a_user(uri):
    with pytest.raises(InvalidURI) as caught:
        parse_uri(uri)
    assert "pa" not in str(caught.value).replace("password", "") and "se/" not in str(caught.value)
    assert "@hv1" in str(caught.value)


def test_query_parameters_are_read_as_libvirt_reads_them():
    uri = parse_uri("qemu+ssh://hv1/system?keyfile=/keys/a+b%20c;no_verify=1&socket")
    assert uri.params == (("keyfile", "/keys/a+b c"), ("no_verify", "1"), ("socket", ""))


@pytest.mark.parametrize("host_id", ["0", "2001", "99999999999999999999"])
def test_an_embedded_host_id_outside_sanlocks_range_is_refused(host_id):
    from virttui.drivers.registry import open_driver

    with pytest.raises(InvalidURI, match="host_id must be a number from 1 to 2000"):
        open_driver(f"test:///default?host_id={host_id}")


def test_the_path_sent_to_the_host_keeps_its_escapes():
    assert parse_uri("qemu+ssh://hv1/sys%3Fmode%3Dlegacy").local_uri == "qemu:///sys%3Fmode%3Dlegacy"
    assert parse_uri("qemu+ssh://hv1/system").local_uri == "qemu:///system"


@pytest.mark.parametrize("text", [
    "qemu+ssh://x%3Btouch%20%2Ftmp%2Fpwned%3B/system",  # %h of an ssh_config `Match exec` goes to a shell
    "qemu+ssh://-oProxyCommand=x/system",
    "qemu+ssh://a%20b/system",
    "qemu+ssh://a$(id)/system",
    "qemu+ssh://h%0a/system",
])
def test_a_host_that_is_no_host_name_is_refused_before_any_use(text):
    with pytest.raises(InvalidURI, match="is not a host name or address"):
        parse_uri(text)


@pytest.mark.parametrize(("text", "host"), [
    ("qemu+ssh://hv1.example.com:2222/system", "hv1.example.com"),
    ("qemu+ssh://[::1]/system", "::1"),
    ("qemu+ssh://[fe80::1%25eth0]/system", "fe80::1%eth0"),
    ("qemu+ssh://root@10.0.0.7/system", "10.0.0.7"),
    ("qemu+ssh://hv_1/system", "hv_1"),
])
def test_host_names_and_addresses_are_kept(text, host):
    assert parse_uri(text).host == host


@pytest.mark.parametrize("text", [
    "qemu+ssh://root:s3cr3t?x@hv1/system",  # the password's '?' starts the query: host "root", port "s3cr3t"
    "qemu+ssh://root:1234?x@127.0.0.1/system",  # ... and with a numeric password it even looks valid
    "qemu+ssh://root:12/s3cr3t@hv1/system",  # a '/' in it starts the path
    "qemu+ssh://root:/s3cr3t@hv1/system",  # ... even right after the colon: an empty port
    "qemu+bogus://root:s3/cr3t@hv1/system",
])
def test_a_password_with_a_question_mark_or_slash_is_never_shown(text):
    secrets = ("cr3t", "1234")
    assert not any(secret in str(redacted(text)) for secret in secrets)
    with pytest.raises(InvalidURI) as refused:
        parse_uri(text)
    assert not any(secret in str(refused.value) for secret in secrets)


def test_an_at_sign_in_a_value_or_a_test_path_is_no_password():
    assert redacted("qemu+ssh://hv1/system?keyfile=/home/a@b/key") == "qemu+ssh://hv1/system?keyfile=/home/a@b/key"
    assert parse_uri("qemu+ssh://hv1/system?keyfile=/home/a@b/key").param("keyfile") == "/home/a@b/key"
    assert redacted("test:///tmp/a@b.xml") == "test:///tmp/a@b.xml"


@pytest.mark.parametrize("port", ["70000", "0", "99999999999999999999"])
def test_an_ssh_config_port_out_of_range_is_an_error_naming_the_file(tmp_path, port):
    from virttui.drivers.sshtarget import resolve_target

    config = tmp_path / "config"
    config.write_text(f"Host hv1\n    Port {port}\n")
    with pytest.raises(InvalidURI, match=f"{config}: Port {port} for hv1 is not a port number"):
        resolve_target(parse_uri("qemu+ssh://hv1/system"), str(config))


def test_ssh_config_supplies_port_user_and_address(tmp_path):
    from virttui.drivers.sshtarget import resolve_target

    config = tmp_path / "config"
    config.write_text("Host hv1\n    Port 2222\n    User ops\n    HostName 10.1.2.3\n")
    target = resolve_target(parse_uri("qemu+ssh://hv1/system"), str(config))
    assert (target.address, target.port, target.user) == ("10.1.2.3", 2222, "ops")
