/**
 * The seccomp profile every instance runs under: default-deny, modeled on the container ecosystem's
 * default profile (Docker's `profiles/seccomp/default.json`, containers-common's `seccomp.json`) for a
 * process that holds none of the capabilities those profiles unlock extra syscalls for (CAP_SYS_ADMIN,
 * CAP_SYS_PTRACE, CAP_BPF, …). Where Ward differs from them it is stricter, and says why below.
 */

/** Errno values the profile returns (x86_64 and aarch64 share them). */
export const EPERM = 1;
export const ENOSYS = 38;

/**
 * CLONE_NAMESPACE_FLAGS is CLONE_NEWNS|CLONE_NEWCGROUP|CLONE_NEWUTS|CLONE_NEWIPC|CLONE_NEWUSER|
 * CLONE_NEWPID|CLONE_NEWNET (0x7E020000): clone() is allowed only with none of them set, so an instance
 * cannot make namespaces (user namespaces are the usual first step of a kernel exploit).
 */
export const CLONE_NAMESPACE_FLAGS = 0x7e02_0000;

/** AF_VSOCK is refused for socket(): it talks to the hypervisor, never something an app needs. */
export const AF_VSOCK = 40;

/**
 * ALLOWED_SYSCALLS run unconditionally. Compared with Docker's list this drops:
 * - io_uring_setup/enter/register: a large, fast-moving attack surface (Docker and Google dropped it too);
 * - ptrace, process_vm_readv/writev: no debugging other processes, even inside the instance;
 * - name_to_handle_at, fanotify_mark: useless without open_by_handle_at / fanotify_init, both denied;
 * - modify_ldt, get/set_thread_area and 32-bit-only names: only 64-bit binaries run (32-bit syscall
 *   ABIs are refused by the profile's architecture list).
 */
export const ALLOWED_SYSCALLS: readonly string[] = [
  'accept', 'accept4', 'access', 'adjtimex', 'alarm', 'bind', 'brk', 'capget', 'capset', 'chdir', 'chmod',
  'chown', 'clock_adjtime', 'clock_getres', 'clock_gettime', 'clock_nanosleep', 'close', 'close_range',
  'connect', 'copy_file_range', 'creat', 'dup', 'dup2', 'dup3', 'epoll_create', 'epoll_create1',
  'epoll_ctl', 'epoll_pwait', 'epoll_pwait2', 'epoll_wait', 'eventfd', 'eventfd2', 'execve', 'execveat',
  'exit', 'exit_group', 'faccessat', 'faccessat2', 'fadvise64', 'fallocate', 'fchdir', 'fchmod',
  'fchmodat', 'fchmodat2', 'fchown', 'fchownat', 'fcntl', 'fdatasync', 'fgetxattr', 'flistxattr', 'flock',
  'fork', 'fremovexattr', 'fsetxattr', 'fstat', 'fstatfs', 'fsync', 'ftruncate', 'futex', 'futex_waitv',
  'futimesat', 'getcpu', 'getcwd', 'getdents', 'getdents64', 'getegid', 'geteuid', 'getgid', 'getgroups',
  'getitimer', 'getpeername', 'getpgid', 'getpgrp', 'getpid', 'getppid', 'getpriority', 'getrandom',
  'getresgid', 'getresuid', 'getrlimit', 'get_robust_list', 'getrusage', 'getsid', 'getsockname',
  'getsockopt', 'gettid', 'gettimeofday', 'getuid', 'getxattr', 'inotify_add_watch', 'inotify_init',
  'inotify_init1', 'inotify_rm_watch', 'io_cancel', 'ioctl', 'io_destroy', 'io_getevents',
  'io_pgetevents', 'ioprio_get', 'ioprio_set', 'io_setup', 'io_submit', 'kill', 'landlock_add_rule',
  'landlock_create_ruleset', 'landlock_restrict_self', 'lchown', 'lgetxattr', 'link', 'linkat', 'listen',
  'listxattr', 'llistxattr', 'lremovexattr', 'lseek', 'lsetxattr', 'lstat', 'madvise', 'membarrier',
  'memfd_create', 'memfd_secret', 'mincore', 'mkdir', 'mkdirat', 'mknod', 'mknodat', 'mlock', 'mlock2',
  'mlockall', 'mmap', 'mprotect', 'mq_getsetattr', 'mq_notify', 'mq_open', 'mq_timedreceive',
  'mq_timedsend', 'mq_unlink', 'mremap', 'msgctl', 'msgget', 'msgrcv', 'msgsnd', 'msync', 'munlock',
  'munlockall', 'munmap', 'nanosleep', 'newfstatat', 'open', 'openat', 'openat2', 'pause', 'pidfd_open',
  'pidfd_send_signal', 'pipe', 'pipe2', 'pkey_alloc', 'pkey_free', 'pkey_mprotect', 'poll', 'ppoll',
  'prctl', 'pread64', 'preadv', 'preadv2', 'prlimit64', 'process_mrelease', 'pselect6', 'pwrite64',
  'pwritev', 'pwritev2', 'read', 'readahead', 'readlink', 'readlinkat', 'readv', 'recvfrom', 'recvmmsg',
  'recvmsg', 'remap_file_pages', 'removexattr', 'rename', 'renameat', 'renameat2', 'restart_syscall',
  'rmdir', 'rseq', 'rt_sigaction', 'rt_sigpending', 'rt_sigprocmask', 'rt_sigqueueinfo', 'rt_sigreturn',
  'rt_sigsuspend', 'rt_sigtimedwait', 'rt_tgsigqueueinfo', 'sched_getaffinity', 'sched_getattr',
  'sched_getparam', 'sched_get_priority_max', 'sched_get_priority_min', 'sched_getscheduler',
  'sched_rr_get_interval', 'sched_setaffinity', 'sched_setattr', 'sched_setparam', 'sched_setscheduler',
  'sched_yield', 'seccomp', 'select', 'semctl', 'semget', 'semop', 'semtimedop', 'sendfile', 'sendmmsg',
  'sendmsg', 'sendto', 'setfsgid', 'setfsuid', 'setgid', 'setgroups', 'setitimer', 'setpgid',
  'setpriority', 'setregid', 'setresgid', 'setresuid', 'setreuid', 'setrlimit', 'set_robust_list',
  'setsid', 'setsockopt', 'set_tid_address', 'setuid', 'setxattr', 'shmat', 'shmctl', 'shmdt', 'shmget',
  'shutdown', 'sigaltstack', 'signalfd', 'signalfd4', 'socketpair', 'splice', 'stat', 'statfs', 'statx',
  'symlink', 'symlinkat', 'sync', 'sync_file_range', 'syncfs', 'sysinfo', 'tee', 'tgkill', 'time',
  'timer_create', 'timer_delete', 'timer_getoverrun', 'timer_gettime', 'timer_settime', 'timerfd_create',
  'timerfd_gettime', 'timerfd_settime', 'times', 'tkill', 'truncate', 'umask', 'uname', 'unlink',
  'unlinkat', 'utime', 'utimensat', 'utimes', 'vfork', 'vmsplice', 'wait4', 'waitid', 'write', 'writev',
];

/** ARCH_SPECIFIC_SYSCALLS are allowed only on the architecture named (arch_prctl sets TLS on x86_64). */
export const ARCH_SPECIFIC_SYSCALLS: Readonly<Record<SeccompArch, readonly string[]>> = {
  SCMP_ARCH_X86_64: ['arch_prctl'],
  SCMP_ARCH_AARCH64: [],
};

/**
 * DENIED_SYSCALLS answer EPERM (operation not permitted) rather than the default ENOSYS, so that
 * software probing for them sees a refusal rather than an old kernel. They are the syscalls the default
 * profiles unlock only with a capability an instance never has: namespaces and mounts (unshare, setns,
 * mount…), tracing (ptrace, process_vm_*, kcmp), kernel keyrings, BPF, perf, modules, reboot, clock and
 * host names, swap, accounting, quotas, raw I/O, handles, io_uring.
 */
export const DENIED_SYSCALLS: readonly string[] = [
  'acct', 'add_key', 'bpf', 'chroot', 'clock_settime', 'delete_module', 'fanotify_init', 'fanotify_mark',
  'finit_module', 'fsconfig', 'fsmount', 'fsopen', 'fspick', 'get_mempolicy', 'init_module',
  'io_uring_enter', 'io_uring_register', 'io_uring_setup', 'ioperm', 'iopl', 'kcmp', 'kexec_file_load',
  'kexec_load', 'keyctl', 'lookup_dcookie', 'mbind', 'migrate_pages', 'modify_ldt', 'mount',
  'mount_setattr', 'move_mount', 'move_pages', 'name_to_handle_at', 'open_by_handle_at', 'open_tree',
  'perf_event_open', 'pidfd_getfd', 'pivot_root', 'process_madvise', 'process_vm_readv',
  'process_vm_writev', 'ptrace', 'quotactl', 'quotactl_fd', 'reboot', 'request_key', 'set_mempolicy',
  'setdomainname', 'sethostname', 'setns', 'settimeofday', 'swapoff', 'swapon', 'syslog', 'umount2',
  'unshare', 'userfaultfd', 'vhangup',
];

export type SeccompArch = 'SCMP_ARCH_X86_64' | 'SCMP_ARCH_AARCH64';

/** seccompArch maps Node's process.arch to libseccomp's name; Ward runs on these two only. */
export function seccompArch(nodeArch: string): SeccompArch {
  if (nodeArch === 'x64') return 'SCMP_ARCH_X86_64';
  if (nodeArch === 'arm64') return 'SCMP_ARCH_AARCH64';
  throw new Error(`unsupported architecture ${nodeArch}: Ward runs instances on x64 and arm64`);
}

export interface SeccompArg {
  index: number;
  value: number;
  valueTwo?: number;
  op: 'SCMP_CMP_EQ' | 'SCMP_CMP_NE' | 'SCMP_CMP_MASKED_EQ';
}

export interface SeccompRule {
  names: string[];
  action: 'SCMP_ACT_ALLOW' | 'SCMP_ACT_ERRNO';
  errnoRet?: number;
  args?: SeccompArg[];
}

/** LinuxSeccomp is the `linux.seccomp` object of the OCI runtime spec. */
export interface LinuxSeccomp {
  defaultAction: 'SCMP_ACT_ERRNO';
  defaultErrnoRet: number;
  architectures: SeccompArch[];
  syscalls: SeccompRule[];
}

/**
 * seccompProfile returns the profile for one architecture. Only the host's native ABI is listed:
 * libseccomp kills a process that enters the kernel through another ABI (int 0x80 on x86_64), which
 * closes the 32-bit compat syscall table entirely. Unlisted syscalls fail with ENOSYS so that a libc
 * newer than the profile falls back to an older syscall (as containers-common's profile does);
 * `clone3` is answered ENOSYS on purpose for the same reason: glibc then uses `clone`, whose flags the
 * profile can inspect (clone3 passes them in memory, out of seccomp's sight).
 */
export function seccompProfile(arch: SeccompArch): LinuxSeccomp {
  return {
    defaultAction: 'SCMP_ACT_ERRNO',
    defaultErrnoRet: ENOSYS,
    architectures: [arch],
    syscalls: [
      { names: [...ALLOWED_SYSCALLS, ...ARCH_SPECIFIC_SYSCALLS[arch]], action: 'SCMP_ACT_ALLOW' },
      // Any socket family but vsock.
      { names: ['socket'], action: 'SCMP_ACT_ALLOW', args: [{ index: 0, value: AF_VSOCK, op: 'SCMP_CMP_NE' }] },
      // personality(2) only for the harmless personas Docker allows: Linux, UNAME26, ADDR_NO_RANDOMIZE,
      // both, and the 0xffffffff query.
      ...[0, 0x8, 0x20000, 0x20008, 0xffffffff].map(
        (value): SeccompRule => ({ names: ['personality'], action: 'SCMP_ACT_ALLOW', args: [{ index: 0, value, op: 'SCMP_CMP_EQ' }] }),
      ),
      // clone(2) for threads and processes, never for namespaces (flags are argument 0 on x86_64 and aarch64).
      {
        names: ['clone'],
        action: 'SCMP_ACT_ALLOW',
        args: [{ index: 0, value: CLONE_NAMESPACE_FLAGS, valueTwo: 0, op: 'SCMP_CMP_MASKED_EQ' }],
      },
      { names: ['clone3'], action: 'SCMP_ACT_ERRNO', errnoRet: ENOSYS },
      { names: [...DENIED_SYSCALLS], action: 'SCMP_ACT_ERRNO', errnoRet: EPERM },
    ],
  };
}
