# fscrypt-ioctl.py: the kernel's fscrypt v2 ioctls (linux/fscrypt.h), for Ward's fscrypt volume backend.
#
# Ward runs it through src/exec with an argv array; the key, when one is needed, comes on stdin and
# nowhere else (never argv, never a file). Debian 12 ships no tool that adds a v2 key (fscryptctl is
# not packaged; e4crypt does v1 policies only; the fscrypt tool keeps its own protectors), and Ward
# loads no native addon into Node, so the four ioctls are made here with Python's fcntl.ioctl.
#
#   add-key MOUNTPOINT           stdin: raw key (64 bytes); prints the key identifier (hex)
#   set-policy DIR IDENTIFIER    sets a v2 policy: AES-256-XTS contents, AES-256-CTS names, 32-byte padding
#   get-policy DIR               prints "version contents filenames flags identifier" or "none"
#   key-status MOUNTPOINT IDENTIFIER   prints absent | present | incompletely_removed
#   remove-key MOUNTPOINT IDENTIFIER   removes the key for all users; prints the status flags
import fcntl
import os
import struct
import sys

FS_IOC_SET_ENCRYPTION_POLICY = 0x800C6613
FS_IOC_GET_ENCRYPTION_POLICY_EX = 0xC0096616
FS_IOC_ADD_ENCRYPTION_KEY = 0xC0506617
FS_IOC_REMOVE_ENCRYPTION_KEY_ALL_USERS = 0xC0406619
FS_IOC_GET_ENCRYPTION_KEY_STATUS = 0xC080661A

KEY_SPEC_TYPE_IDENTIFIER = 2
MODE_AES_256_XTS = 1
MODE_AES_256_CTS = 4
POLICY_FLAGS_PAD_32 = 0x03
STATUS = {1: 'absent', 2: 'present', 3: 'incompletely_removed'}


def key_spec(identifier: bytes) -> bytes:
    return struct.pack('=II32s', KEY_SPEC_TYPE_IDENTIFIER, 0, identifier)


def open_dir(path: str) -> int:
    return os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)


def ident(hexstr: str) -> bytes:
    b = bytes.fromhex(hexstr)
    if len(b) != 16:
        raise SystemExit('identifier must be 16 bytes of hex')
    return b


def main(argv: list) -> int:
    op = argv[1] if len(argv) > 1 else ''
    if op == 'add-key' and len(argv) == 3:
        raw = sys.stdin.buffer.read(65)
        if len(raw) != 64:
            raise SystemExit('add-key wants exactly 64 key bytes on stdin')
        arg = bytearray(key_spec(b'') + struct.pack('=II32x', len(raw), 0) + raw)
        fd = open_dir(argv[2])
        try:
            fcntl.ioctl(fd, FS_IOC_ADD_ENCRYPTION_KEY, arg, True)
        finally:
            os.close(fd)
        # Overwrite our copy; Python may hold others, but this process ends at once.
        for i in range(80, len(arg)):
            arg[i] = 0
        print(bytes(arg[8:24]).hex())
        return 0
    if op == 'set-policy' and len(argv) == 4:
        policy = struct.pack('=BBBB4x16s', 2, MODE_AES_256_XTS, MODE_AES_256_CTS, POLICY_FLAGS_PAD_32, ident(argv[3]))
        fd = open_dir(argv[2])
        try:
            fcntl.ioctl(fd, FS_IOC_SET_ENCRYPTION_POLICY, policy)
        finally:
            os.close(fd)
        return 0
    if op == 'get-policy' and len(argv) == 3:
        arg = bytearray(struct.pack('=Q', 24) + bytes(24 + 8))
        fd = open_dir(argv[2])
        try:
            fcntl.ioctl(fd, FS_IOC_GET_ENCRYPTION_POLICY_EX, arg, True)
        except OSError as e:
            if e.errno == 61:  # ENODATA: not encrypted
                print('none')
                return 0
            raise
        finally:
            os.close(fd)
        version, contents, names, flags = arg[8], arg[9], arg[10], arg[11]
        print(version, contents, names, flags, bytes(arg[16:32]).hex())
        return 0
    if op == 'key-status' and len(argv) == 4:
        arg = bytearray(key_spec(ident(argv[3])) + bytes(24) + bytes(64))
        fd = open_dir(argv[2])
        try:
            fcntl.ioctl(fd, FS_IOC_GET_ENCRYPTION_KEY_STATUS, arg, True)
        finally:
            os.close(fd)
        (status,) = struct.unpack_from('=I', arg, 64)
        print(STATUS.get(status, 'unknown'))
        return 0
    if op == 'remove-key' and len(argv) == 4:
        arg = bytearray(key_spec(ident(argv[3])) + bytes(24))
        fd = open_dir(argv[2])
        try:
            fcntl.ioctl(fd, FS_IOC_REMOVE_ENCRYPTION_KEY_ALL_USERS, arg, True)
        finally:
            os.close(fd)
        (flags,) = struct.unpack_from('=I', arg, 40)
        print(flags)
        return 0
    print('usage: fscrypt-ioctl.py add-key MNT | set-policy DIR ID | get-policy DIR | key-status MNT ID | remove-key MNT ID', file=sys.stderr)
    return 2


if __name__ == '__main__':
    try:
        sys.exit(main(sys.argv))
    except OSError as e:
        print(f'{sys.argv[1] if len(sys.argv) > 1 else "fscrypt-ioctl"}: {os.strerror(e.errno) if e.errno else e} (errno {e.errno})', file=sys.stderr)
        sys.exit(1)
