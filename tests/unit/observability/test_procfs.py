"""An instance's process tree, computed from a table of (pid -> parent, group)."""

import socket

from wharf.observability.procfs import _decode, _serves, process_tree, unix_line

# 100 is the instance (its own group); 101, 102 its workers; 103 a grandchild; 104 left the
# tree by daemonizing (parent 1) but stayed in the group; 105 a child of 104 in its own group;
# 200 and 201 belong to someone else.
TABLE = {1: (0, 1), 100: (1, 100), 101: (100, 100), 102: (100, 100), 103: (101, 100),
         104: (1, 100), 105: (104, 105), 200: (1, 200), 201: (200, 200)}


def test_the_tree_is_the_root_then_its_descendants_and_its_group():
    assert process_tree(100, TABLE) == [100, 101, 102, 103, 104, 105]


def test_a_process_with_no_children_is_its_own_tree():
    assert process_tree(201, TABLE) == [201]


def test_a_root_that_is_gone_has_no_tree():
    assert process_tree(999, TABLE) == []


def test_a_cycle_in_the_table_does_not_loop():
    assert process_tree(10, {10: (11, 10), 11: (10, 10)}) == [10, 11]


def test_a_wildcard_listener_serves_every_address():
    assert _serves("0.0.0.0", "127.0.0.1") and _serves("::", "::1")
    assert _serves("::ffff:127.0.0.1", "127.0.0.1") and _serves("::1", "::1")
    assert not _serves("127.0.0.2", "127.0.0.1") and not _serves("::1", "127.0.0.1")


def test_addresses_are_decoded_as_proc_net_tcp_writes_them():
    assert _decode("0100007F", socket.AF_INET) == "127.0.0.1"
    assert _decode("00000000000000000000000001000000", socket.AF_INET6) == "::1"
    assert _decode("0000000000000000FFFF00000100007F", socket.AF_INET6) == "::ffff:127.0.0.1"


def test_a_proc_net_unix_line_gives_type_state_inode_and_path():
    accepted = "000000000719eea4: 00000003 00000000 00000000 0001 03 3408445 /run/a b.sock\n"
    assert unix_line(accepted) == ("0001", "03", "3408445", "/run/a b.sock")
    unnamed = "0000000006f1f470: 00000003 00000000 00000000 0001 03 3408444\n"
    assert unix_line(unnamed) is None
    assert unix_line("Num       RefCount Protocol Flags    Type St Inode Path\n") is None
