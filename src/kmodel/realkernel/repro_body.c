/* ---- the fixed part of every kmodel reproducer (src/kmodel/realkernel/repro_body.c) ----
 *
 * Roles, each named as the model's task is (prctl(PR_SET_NAME), so that ps, dmesg and the
 * trace show the same names as kmodel's reports):
 *   kmodel-repro   this process: sets up cgroups, forks the others, orders the activities
 *                  (one "go" pipe per activity, one status pipe back), cleans up
 *   qemu           the VMM: a VM with memslot 0 (64 KiB, gfn 0-0xf) and memslot 1 (16 MiB
 *                  from gfn 0x10) over anonymous memory; its main thread does vm-close/exit;
 *                  one thread per VM activity (qemu-vcpu0, qemu-ioctl, qemu-madvise, ...)
 *   lmkd           kills qemu and calls process_mrelease() on it
 *   stress-ng      charges the run's memory cgroup until the kernel's OOM killer kills the
 *                  victim (qemu, or bash for other-mm); the kernel's oom_reaper then reaps it
 *   bash           a process with no KVM, the other-mm victim
 */

#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <linux/userfaultfd.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifndef __NR_pidfd_open
#define __NR_pidfd_open 434
#endif
#ifndef __NR_pidfd_send_signal
#define __NR_pidfd_send_signal 424
#endif
#ifndef __NR_process_mrelease
#define __NR_process_mrelease 448
#endif
#ifndef MADV_PAGEOUT
#define MADV_PAGEOUT 21
#endif

#define SLOT0_SIZE   0x10000UL               /* gfn 0x0-0xf */
#define SLOT1_GPA    0x10000UL               /* gfn 0x10 */
#define SLOT1_SIZE   (16UL << 20)
#define VICTIM_SIZE  (16UL << 20)            /* bash's memory (other-mm) */
#define MEMCG_LIMIT  (24UL << 20)            /* the victim's 16 MiB + stress-ng's share */
#define STRESS_SIZE  (MEMCG_LIMIT - (4UL << 20))
#define CPU_PIN      0

/* @PLAN@ */

static const char *const ACT_NAME[NACT] = ACT_NAMES;

/* ---- messages back to kmodel-repro: 8 bytes, atomic on a pipe ---- */
struct msg { short act; char what; char pad; int val; };  /* what: R ready, S started, D done, E error, T tid */
static int go_fd[NACT][2], status_fd[2];

static void say_val(int act, char what, int val)
{
	struct msg m = { (short)act, what, 0, val };
	if (write(status_fd[1], &m, sizeof m) != sizeof m)
		_exit(111);
}

static void say(int act, char what)
{
	say_val(act, what, 0);
}

static void note(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	printf("kmodel-repro: ");
	vprintf(fmt, ap);
	printf("\n");
	fflush(stdout);
	va_end(ap);
}

/* KMODEL_TRACE_MARKER: a tracefs trace_marker file (kmodel conform passes its private
 * instance's): each "go" and the end of each try are marked in the trace. */
static int marker_fd = -1;

static void mark(const char *fmt, ...)
{
	char buf[200];
	va_list ap;
	int n;
	if (marker_fd < 0)
		return;
	va_start(ap, fmt);
	n = vsnprintf(buf, sizeof buf, fmt, ap);
	va_end(ap);
	if (n > 0 && write(marker_fd, buf, n < (int)sizeof buf ? n : (int)sizeof buf - 1) < 0)
		marker_fd = -1;
}

static void wait_go(int act)
{
	char c;
	while (read(go_fd[act][0], &c, 1) < 0 && errno == EINTR)
		;
}

static void set_comm(const char *name)
{
	prctl(PR_SET_NAME, name, 0, 0, 0);
}

static int write_file(const char *path, const char *text)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC), rc = 0;
	if (fd < 0)
		return -1;
	if (write(fd, text, strlen(text)) < 0)
		rc = -1;
	close(fd);
	return rc;
}

static void pin_to_cpu(void)
{
	cpu_set_t set;
	CPU_ZERO(&set);
	CPU_SET(CPU_PIN, &set);
	sched_setaffinity(0, sizeof set, &set);
}

/* ---- cgroups: the run's own memory cgroup (v2 memory.max, or v1 limit_in_bytes) ---- */
static char memcg[256];
static int memcg_v2;

static int setup_cgroups(void)
{
	char path[300], buf[64];
	struct stat st;
	if (stat("/sys/fs/cgroup/cgroup.controllers", &st) == 0) {
		int fd = open("/sys/fs/cgroup/cgroup.controllers", O_RDONLY);
		ssize_t n = fd >= 0 ? read(fd, buf, sizeof buf - 1) : -1;
		if (fd >= 0)
			close(fd);
		buf[n > 0 ? n : 0] = 0;
		if (strstr(buf, "memory")) {
			memcg_v2 = 1;
			snprintf(memcg, sizeof memcg, "/sys/fs/cgroup/kmodel-repro-%d", getpid());
		}
	}
	if (!memcg[0] && stat("/sys/fs/cgroup/memory/memory.limit_in_bytes", &st) == 0)
		snprintf(memcg, sizeof memcg, "/sys/fs/cgroup/memory/kmodel-repro-%d", getpid());
	if (!memcg[0]) {
		note("cannot run: no memory cgroup (neither cgroup v2 with the memory controller "
		     "at /sys/fs/cgroup nor cgroup v1 at /sys/fs/cgroup/memory)");
		return 2;
	}
	if (mkdir(memcg, 0755) < 0) {
		note("cannot run: mkdir %s: %s", memcg, strerror(errno));
		memcg[0] = 0;
		return 2;
	}
	snprintf(buf, sizeof buf, "%lu", MEMCG_LIMIT);
	if (memcg_v2) {
		snprintf(path, sizeof path, "%s/memory.swap.max", memcg);
		write_file(path, "0");                      /* OOM, not swap */
		snprintf(path, sizeof path, "%s/memory.max", memcg);
	} else {
		snprintf(path, sizeof path, "%s/memory.swappiness", memcg);
		write_file(path, "0");                      /* OOM, not swap */
		snprintf(path, sizeof path, "%s/memory.oom_control", memcg);
		write_file(path, "0");                      /* the OOM killer enabled */
		snprintf(path, sizeof path, "%s/memory.limit_in_bytes", memcg);
	}
	if (write_file(path, buf) < 0) {
		note("cannot run: %s: %s", path, strerror(errno));
		return 2;
	}
	note("memory cgroup %s, limit %lu MiB", memcg, MEMCG_LIMIT >> 20);
	return 0;
}

static unsigned long memcg_usage(void)
{
	char path[300], buf[64];
	int fd;
	ssize_t n;
	snprintf(path, sizeof path, "%s/%s", memcg,
		 memcg_v2 ? "memory.current" : "memory.usage_in_bytes");
	fd = open(path, O_RDONLY);
	n = fd >= 0 ? read(fd, buf, sizeof buf - 1) : -1;
	if (fd >= 0)
		close(fd);
	buf[n > 0 ? n : 0] = 0;
	return strtoul(buf, NULL, 10);
}

static void join_memcg(void)
{
	char path[300], buf[32];
	snprintf(path, sizeof path, "%s/cgroup.procs", memcg);
	snprintf(buf, sizeof buf, "%d", getpid());
	if (write_file(path, buf) < 0)
		note("cannot join %s: %s", memcg, strerror(errno));
}

static void remove_cgroups(void)
{
	if (memcg[0]) {
		for (int i = 0; i < 100 && rmdir(memcg) < 0 && errno == EBUSY; i++)
			usleep(20000);
		memcg[0] = 0;
	}
}

static void oom_score_adj(int adj)
{
	char buf[16];
	snprintf(buf, sizeof buf, "%d", adj);
	write_file("/proc/self/oom_score_adj", buf);
}

/* ---- the VM ---- */
/* Real-mode guest code at gpa 0.  Entry 0x0 writes gfn 0 (at 0x100) and gfn 0x10 (ds =
 * 0x1000: linear 0x10000), outputs 'k' on port 0x3f8 and halts; entry 0x40 only reads
 * them (the read before a copy-on-write fault). */
static const unsigned char GUEST_WRITE[] = {
	0xc6, 0x06, 0x00, 0x01, 0x01,   /* mov byte [0x100], 1 */
	0xb8, 0x00, 0x10,               /* mov ax, 0x1000 */
	0x8e, 0xd8,                     /* mov ds, ax */
	0xc6, 0x06, 0x00, 0x00, 0x01,   /* mov byte [0x0], 1 */
	0xba, 0xf8, 0x03,               /* mov dx, 0x3f8 */
	0xb0, 'k', 0xee,                /* mov al, 'k'; out dx, al */
	0xf4,                           /* hlt */
};
static const unsigned char GUEST_READ[] = {
	0xa0, 0x00, 0x01,               /* mov al, [0x100] */
	0xb8, 0x00, 0x10, 0x8e, 0xd8,   /* ds = 0x1000 */
	0xa0, 0x00, 0x00,               /* mov al, [0x0] */
	0xba, 0xf8, 0x03, 0xb0, 'r', 0xee, 0xf4,
};
#define ENTRY_WRITE 0x0
#define ENTRY_READ  0x40

struct vm {
	int kvm, vm, vcpu;
	struct kvm_run *run;
	size_t run_size;
	unsigned char *mem0, *mem1;
} V;

static int vm_ioctl_err(const char *what)
{
	note("qemu: %s: %s", what, strerror(errno));
	return -1;
}

static int create_vm(void)
{
	struct kvm_userspace_memory_region r0 = { 0 }, r1 = { 0 };
	V.kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	if (V.kvm < 0)
		return vm_ioctl_err("open /dev/kvm");
	V.vm = ioctl(V.kvm, KVM_CREATE_VM, 0);
	if (V.vm < 0)
		return vm_ioctl_err("KVM_CREATE_VM");
	V.mem0 = mmap(NULL, SLOT0_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	V.mem1 = mmap(NULL, SLOT1_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (V.mem0 == MAP_FAILED || V.mem1 == MAP_FAILED)
		return vm_ioctl_err("mmap guest memory");
	memset(V.mem0, 0, SLOT0_SIZE);                   /* every page faulted in (the model's */
	memset(V.mem1, 0, SLOT1_SIZE);                   /* initial state) */
	memcpy(V.mem0 + ENTRY_WRITE, GUEST_WRITE, sizeof GUEST_WRITE);
	memcpy(V.mem0 + ENTRY_READ, GUEST_READ, sizeof GUEST_READ);
	r0.slot = 0; r0.guest_phys_addr = 0; r0.memory_size = SLOT0_SIZE;
	r0.userspace_addr = (unsigned long)V.mem0;
	r1.slot = 1; r1.guest_phys_addr = SLOT1_GPA; r1.memory_size = SLOT1_SIZE;
	r1.userspace_addr = (unsigned long)V.mem1;
	if (ioctl(V.vm, KVM_SET_USER_MEMORY_REGION, &r0) < 0 ||
	    ioctl(V.vm, KVM_SET_USER_MEMORY_REGION, &r1) < 0)
		return vm_ioctl_err("KVM_SET_USER_MEMORY_REGION");
	/* A vCPU always: in the model's initial state the guest's memory is mapped by the
	 * secondary MMU (knob populated), and only a guest that ran has KVM MMU pages. */
	V.vcpu = ioctl(V.vm, KVM_CREATE_VCPU, 0);
	if (V.vcpu < 0)
		return vm_ioctl_err("KVM_CREATE_VCPU");
	V.run_size = ioctl(V.kvm, KVM_GET_VCPU_MMAP_SIZE, 0);
	V.run = mmap(NULL, V.run_size, PROT_READ | PROT_WRITE, MAP_SHARED, V.vcpu, 0);
	if (V.run == MAP_FAILED)
		return vm_ioctl_err("mmap kvm_run");
	return 0;
}

/* The model's VM has no vCPU fd unless a vcpu activity runs one: drop it (the vCPU
 * itself lives on until the VM is destroyed). */
static void close_vcpu_fd(void)
{
	if (V.vcpu >= 0) {
		munmap(V.run, V.run_size);
		close(V.vcpu);
		V.vcpu = -1;
	}
}

/* KVM_RUN from ``entry`` until the guest halts. */
static int run_guest(unsigned long entry)
{
	struct kvm_sregs s;
	struct kvm_regs regs = { 0 };
	if (ioctl(V.vcpu, KVM_GET_SREGS, &s) < 0)
		return vm_ioctl_err("KVM_GET_SREGS");
	s.cs.base = 0; s.cs.selector = 0;
	s.ds.base = 0; s.ds.selector = 0;
	if (ioctl(V.vcpu, KVM_SET_SREGS, &s) < 0)
		return vm_ioctl_err("KVM_SET_SREGS");
	regs.rip = entry;
	regs.rflags = 2;
	if (ioctl(V.vcpu, KVM_SET_REGS, &regs) < 0)
		return vm_ioctl_err("KVM_SET_REGS");
	for (int i = 0; i < 16; i++) {
		if (ioctl(V.vcpu, KVM_RUN, 0) < 0) {
			if (errno == EINTR)
				return 0;
			if (errno == EFAULT) {   /* a race lost to munmap: the model has it too */
				note("qemu-vcpu0: KVM_RUN: EFAULT: the guest's memory was unmapped first");
				return 0;
			}
			return vm_ioctl_err("KVM_RUN");
		}
		if (V.run->exit_reason == KVM_EXIT_HLT)
			return 0;
		if (V.run->exit_reason == KVM_EXIT_MMIO)
			continue;                /* gfn 0x10's memslot was deleted first: MMIO now */
		if (V.run->exit_reason != KVM_EXIT_IO) {
			note("qemu-vcpu0: unexpected exit reason %u", V.run->exit_reason);
			return -1;
		}
	}
	return -1;
}

/* ---- the activities that run in qemu's threads ---- */
static int act_vm(int act)
{
	struct kvm_userspace_memory_region del = { .slot = 1, .guest_phys_addr = SLOT1_GPA };
	switch (act) {
	case A_VCPU:
	case A_VCPU_COW:
		return run_guest(ENTRY_WRITE);
	case A_MEMSLOT:                          /* memory_size 0: delete memslot 1 */
		return ioctl(V.vm, KVM_SET_USER_MEMORY_REGION, &del) < 0 ?
			vm_ioctl_err("KVM_SET_USER_MEMORY_REGION (delete slot 1)") : 0;
	case A_MADVISE:
		return madvise(V.mem1, SLOT1_SIZE, MADV_DONTNEED) < 0 ? vm_ioctl_err("madvise") : 0;
	case A_MUNMAP:
		return munmap(V.mem1, SLOT1_SIZE) < 0 ? vm_ioctl_err("munmap") : 0;
	case A_RECLAIM:
		return madvise(V.mem0, SLOT0_SIZE, MADV_PAGEOUT) < 0 ? vm_ioctl_err("madvise(MADV_PAGEOUT)") : 0;
	}
	return 0;
}

static volatile int cow_ready;

static void *vm_thread(void *arg)
{
	int act = (int)(long)arg;
	set_comm(ACT_COMM[act]);
	if (act == A_VCPU_COW) {
		run_guest(ENTRY_READ);       /* gfn 0x10 mapped, then made CoW by qemu's fork */
		cow_ready = 1;
		while (cow_ready != 2)
			usleep(1000);
	}
	say_val(act, 'R', (int)syscall(SYS_gettid));
	wait_go(act);
	say(act, 'S');
	mark("kmodel-repro: start %s", ACT_NAME[act]);
	int rc = act_vm(act);
	mark("kmodel-repro: done %s", ACT_NAME[act]);     /* glibc's thread exit follows */
	say(act, rc ? 'E' : 'D');
	return NULL;
}

static pid_t cow_child = -1;

static void qemu_main(void)
{
	pthread_t th;
	set_comm("qemu");
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (HAVE_ACT(A_OOM))
		join_memcg(), oom_score_adj(1000);
	if (HAVE_ACT(A_MRELEASE))
		pin_to_cpu();                        /* lmkd outranks it on this CPU: see lmkd_main */
	if (create_vm() < 0)
		_exit(1);
	if (POPULATED && !HAVE_ACT(A_VCPU_COW) && run_guest(ENTRY_WRITE) < 0)
		_exit(1);                    /* the model's initial state: the guest ran */
	if (!HAVE_VCPU)
		close_vcpu_fd();
	for (int a = 0; a < NACT; a++)
		if (HAVE_ACT(a) && ACT_IN_QEMU_THREAD(a))
			pthread_create(&th, NULL, vm_thread, (void *)(long)a);
	if (HAVE_ACT(A_VCPU_COW)) {
		/* after the guest has read gfn 0x10 (vm_thread's first run), a fork makes its page
		 * copy-on-write: the guest's write then breaks CoW inside KVM's GUP */
		while (!cow_ready)
			usleep(1000);
		cow_child = fork();
		if (cow_child == 0) {
			set_comm("qemu-cowref");
			prctl(PR_SET_PDEATHSIG, SIGKILL);
			for (;;)
				pause();
		}
		cow_ready = 2;
	}
	say_val(A_QEMU, 'R', getpid());
	if (HAVE_ACT(A_VM_CLOSE)) {
		wait_go(A_VM_CLOSE);
		say(A_VM_CLOSE, 'S');
		mark("kmodel-repro: start vm-close");
		/* the vCPU's fd and its kvm_run mapping hold the VM too: the VM fd's close is the
		 * last reference (kvm_vm_release -> kvm_put_kvm -> kvm_destroy_vm) */
		close_vcpu_fd();
		close(V.vm);
		mark("kmodel-repro: done vm-close");
		say(A_VM_CLOSE, 'D');
	}
	if (HAVE_ACT(A_EXIT)) {
		wait_go(A_EXIT);
		say(A_EXIT, 'S');
		if (HAVE_KILLER)
			for (;;)
				pause();     /* a killable sleep: qemu exits on the killer's SIGKILL */
		if (cow_child > 0)
			kill(cow_child, SIGKILL);
		exit(0);
	}
	for (;;)
		pause();
}

/* ---- the other processes ---- */
static void lmkd_main(pid_t qemu)
{
	struct sched_param sp = { .sched_priority = 1 };
	int pidfd, rc;
	set_comm("lmkd");
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	pidfd = syscall(__NR_pidfd_open, qemu, 0);
	if (pidfd < 0) {
		note("lmkd: pidfd_open: %s", strerror(errno));
		say(A_MRELEASE, 'E');
		_exit(1);
	}
	/* On qemu's CPU and above it (SCHED_FIFO), so that qemu's threads cannot run between
	 * the SIGKILL and the reap: else qemu's exit_mmap may unhook KVM's notifier first. */
	pin_to_cpu();
	if (sched_setscheduler(0, SCHED_FIFO, &sp) < 0)
		note("lmkd: cannot run as SCHED_FIFO (%s): qemu may exit before the reap, and then "
		     "process_mrelease() finds nothing of KVM's", strerror(errno));
	say_val(A_MRELEASE, 'R', getpid());
	wait_go(A_MRELEASE);
	say(A_MRELEASE, 'S');
	if (syscall(__NR_pidfd_send_signal, pidfd, SIGKILL, NULL, 0) < 0)
		note("lmkd: pidfd_send_signal: %s", strerror(errno));
	rc = syscall(__NR_process_mrelease, pidfd, 0);
	sp.sched_priority = 0;
	sched_setscheduler(0, SCHED_OTHER, &sp);
	if (rc < 0)
		note("lmkd: process_mrelease: %s", strerror(errno));
	else
		note("lmkd: process_mrelease(qemu) = 0");
	say(A_MRELEASE, rc < 0 ? 'E' : 'D');
	_exit(0);
}

static void stress_main(int act)
{
	set_comm("stress-ng");
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	join_memcg();
	say_val(act, 'R', getpid());
	wait_go(act);
	say(act, 'S');
	/* charge the cgroup past its limit, a MiB at a time: the kernel's OOM killer picks the
	 * victim (oom_score_adj 1000) while this task faults */
	for (unsigned long done = 0; done < STRESS_SIZE; done += 1UL << 20) {
		char *p = mmap(NULL, 1UL << 20, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (p == MAP_FAILED) {
			say(act, 'E');
			_exit(1);
		}
		memset(p, 1, 1UL << 20);
	}
	say(act, 'D');
	_exit(0);
}

static void bash_main(void)
{
	char *p;
	set_comm("bash");
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	join_memcg();
	oom_score_adj(1000);
	p = mmap(NULL, VICTIM_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p != MAP_FAILED)
		memset(p, 1, VICTIM_SIZE);
	say_val(A_BASH, 'R', getpid());
	for (;;)
		pause();
}

/* kmodel-hold: keeps the OOM victim's mm alive (mm_users) past the oom_reaper's 2 s delay
 * (OOM_REAPER_DELAY), as a victim stuck in the kernel would: it reads the victim's
 * /proc/PID/mem into a buffer registered with userfaultfd, so the read (mem_rw, which
 * holds mmget) waits in handle_userfault until kmodel-repro kills it.  Without it the
 * victim's exit_mmap unhooks KVM's notifier and sets MMF_OOM_SKIP long before the
 * reaper wakes. */
static void hold_main(pid_t victim, int act)
{
	struct uffdio_api api = { .api = UFFD_API };
	struct uffdio_register reg = { 0 };
	char path[64], *buf;
	int uffd, fd;
	set_comm("kmodel-hold");
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	uffd = syscall(__NR_userfaultfd, O_CLOEXEC);
	buf = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	reg.range.start = (unsigned long)buf;
	reg.range.len = 4096;
	reg.mode = UFFDIO_REGISTER_MODE_MISSING;
	if (uffd < 0 || ioctl(uffd, UFFDIO_API, &api) < 0 || ioctl(uffd, UFFDIO_REGISTER, &reg) < 0) {
		note("kmodel-hold: userfaultfd: %s: nothing holds the victim's mm, which its exit "
		     "frees before the oom_reaper's 2 s delay (the reaper then skips it)",
		     strerror(errno));
		say(A_HOLD, 'E');
		for (;;)
			pause();
	}
	snprintf(path, sizeof path, "/proc/%d/mem", victim);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	say_val(A_HOLD, 'R', act);
	/* the victim has the same binary at the same addresses (fork, no exec): read its V */
	if (fd < 0 || pread(fd, buf, sizeof V, (off_t)(unsigned long)&V) < 0)
		note("kmodel-hold: reading %s: %s", path, strerror(errno));
	for (;;)
		pause();
}

/* ---- kmodel-repro: one attempt ---- */
static pid_t children[8];
static int nchildren;
static volatile sig_atomic_t interrupted;

static pid_t spawn(void (*fn)(void))
{
	pid_t pid = fork();
	if (pid == 0) {
		fn();
		_exit(0);
	}
	if (pid > 0)
		children[nchildren++] = pid;
	return pid;
}

static pid_t qemu_pid;
static void run_qemu(void) { qemu_main(); }
static void run_lmkd(void) { lmkd_main(qemu_pid); }
static void run_stress(void) { stress_main(HAVE_ACT(A_OOM) ? A_OOM : A_OTHER_MM); }
static void run_bash(void) { bash_main(); }
static pid_t bash_pid, hold_pid;
static void run_hold(void) { hold_main(HAVE_ACT(A_OOM) ? qemu_pid : bash_pid, 0); }

static void kill_children(void)
{
	for (int i = 0; i < nchildren; i++)
		if (children[i] > 0)
			kill(children[i], SIGKILL);
	for (int i = 0; i < nchildren; i++)
		if (children[i] > 0)
			waitpid(children[i], NULL, 0);
	nchildren = 0;
}

static char seen[NACT];                      /* the last message from each activity */
static int seen_S[NACT], seen_D[NACT];

/* Read status messages until ``act`` has sent ``what`` (S also counts as reached by D);
 * -1 on a timeout or an error message. */
static int wait_for(int act, char what, int timeout_ms)
{
	struct timespec t0, t;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (;;) {
		struct msg m;
		if ((what == 'S' && seen_S[act]) || (what == 'D' && seen_D[act]) ||
		    (what == 'R' && seen[act]))
			return 0;
		if (seen[act] == 'E')
			return -1;
		clock_gettime(CLOCK_MONOTONIC, &t);
		if ((t.tv_sec - t0.tv_sec) * 1000 + (t.tv_nsec - t0.tv_nsec) / 1000000 > timeout_ms
		    || interrupted)
			return -1;
		fd_set rd;
		struct timeval tv = { 0, 100000 };
		FD_ZERO(&rd);
		FD_SET(status_fd[0], &rd);
		if (select(status_fd[0] + 1, &rd, NULL, NULL, &tv) <= 0)
			continue;
		if (read(status_fd[0], &m, sizeof m) != sizeof m)
			continue;
		if (m.act < 0 || m.act >= NACT)
			continue;
		seen[m.act] = m.what;
		if (m.what == 'R' && m.val > 0 && m.act != A_HOLD)   /* who is who, for the trace */
			note("task %s %d", ACT_COMM[m.act], m.val);
		if (m.what == 'S')
			seen_S[m.act] = 1;
		if (m.what == 'D' || m.what == 'E')
			seen_S[m.act] = seen_D[m.act] = 1;
	}
}

static int attempt(int try)
{
	int rc = 0, status;
	nchildren = 0;
	hold_pid = bash_pid = 0;
	memset(seen, 0, sizeof seen);
	memset(seen_S, 0, sizeof seen_S);
	memset(seen_D, 0, sizeof seen_D);
	if (pipe(status_fd) < 0)
		return 1;
	for (int a = 0; a < NACT; a++)
		if (pipe(go_fd[a]) < 0)
			return 1;
	note("try %d", try);
	qemu_pid = spawn(run_qemu);
	if (HAVE_ACT(A_OTHER_MM))
		bash_pid = spawn(run_bash);
	if (HAVE_ACT(A_MRELEASE))
		spawn(run_lmkd);
	if (HAVE_ACT(A_OOM) || HAVE_ACT(A_OTHER_MM))
		spawn(run_stress);
	/* everyone ready: the VM built, the guest's memory faulted in */
	for (int a = 0; a < NACT; a++) {
		int want = a == A_QEMU || (HAVE_ACT(a) && (ACT_IN_QEMU_THREAD(a) || a == A_MRELEASE)) ||
			   (a == A_BASH && HAVE_ACT(A_OTHER_MM)) ||
			   (a == A_OOM && HAVE_ACT(A_OOM)) || (a == A_OTHER_MM && HAVE_ACT(A_OTHER_MM) && !HAVE_ACT(A_OOM)) ||
			   0;
		if (want && wait_for(a, 'R', 10000) < 0) {
			note("try %d: %s did not get ready", try, ACT_COMM[a]);
			rc = 1;
			goto out;
		}
	}
	if (HAVE_ACT(A_OOM) || HAVE_ACT(A_OTHER_MM)) {
		pid_t hold = hold_pid = spawn(run_hold);
		if (wait_for(A_HOLD, 'R', 5000) == 0) {
			usleep(100000);          /* into its read, mm held */
			note("kmodel-hold (pid %d) holds the victim's mm past the oom_reaper's delay",
			     hold);
		}
	}
	note("qemu pid %d ready: VM with memslot 0 (gfn 0x0-0xf) and memslot 1 (gfn 0x10-0x%lx) "
	     "over anonymous memory", qemu_pid, (SLOT1_GPA + SLOT1_SIZE) / 4096 - 1);
	for (unsigned i = 0; i < sizeof PLAN / sizeof PLAN[0]; i++) {
		const struct step *s = &PLAN[i];
		for (int d = 0; d < s->ndeps; d++)
			if (wait_for(s->deps[d].act, s->deps[d].what, 15000) < 0) {
				note("try %d: %s did not %s", try, ACT_NAME[s->deps[d].act],
				     s->deps[d].what == 'S' ? "start" : "finish");
				rc = 1;
				goto out;
			}
		if (s->note)
			note("%s", s->note);
		note("go %s (%s)", ACT_NAME[s->act], ACT_COMM[s->act]);
		mark("kmodel-repro: try %d go %s", try, ACT_NAME[s->act]);
		if (write(go_fd[s->act][1], "g", 1) != 1)
			rc = 1;
	}
	for (unsigned i = 0; i < sizeof PLAN / sizeof PLAN[0]; i++) {
		int a = PLAN[i].act;
		/* the killers' own fate: stress-ng may be the next OOM victim while the
		 * first one's memory is held (kmodel-hold), lmkd always finishes */
		if (a == A_OOM || a == A_OTHER_MM)
			continue;
		if (!ACT_CAN_BE_KILLED(a) || !HAVE_KILLER) {
			if (wait_for(a, 'D', 15000) < 0 || seen[a] == 'E') {
				note("try %d: %s did not finish", try, ACT_NAME[a]);
				rc = 1;
			}
		}
	}
	if (HAVE_ACT(A_OOM) || HAVE_ACT(A_OTHER_MM)) {
		/* the oom_reaper wakes OOM_REAPER_DELAY (2 s) after the kill: wait until the
		 * victim's 16 MiB leave the cgroup (reaped), at most 6 s */
		unsigned long top = memcg_usage(), now = top;
		int reaped = 0;
		for (int i = 0; i < 600 && !reaped && !interrupted; i++) {
			now = memcg_usage();
			top = now > top ? now : top;
			reaped = top - now >= (12UL << 20);
			if (!reaped)
				usleep(10000);
		}
		note("%s: cgroup usage %lu KiB at most, now %lu KiB", reaped ?
		     "the victim was reaped" : "the victim's memory was not freed within 6 s",
		     top >> 10, now >> 10);
		if (!reaped)
			rc = 1;
	}
	if (HAVE_KILLER) {
		if (hold_pid > 0)
			kill(hold_pid, SIGKILL);         /* the hold goes: the victim's mm with it */
		for (int i = 0; i < 300; i++) {
			if (waitpid(qemu_pid, &status, WNOHANG) == qemu_pid) {
				note("qemu %s", WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL ?
				     "was killed (SIGKILL)" : "exited without SIGKILL");
				for (int c = 0; c < nchildren; c++)
					if (children[c] == qemu_pid)
						children[c] = -1;
				break;
			}
			usleep(10000);
		}
	}
out:
	mark("kmodel-repro: try %d end", try);
	kill_children();                         /* the end of the attempt */
	for (int a = 0; a < NACT; a++)
		close(go_fd[a][0]), close(go_fd[a][1]);
	close(status_fd[0]);
	close(status_fd[1]);
	note("try %d: %s", try, rc ? "FAILED" : "done");
	return rc;
}

static void on_signal(int sig)
{
	(void)sig;
	interrupted = 1;
}

static void cleanup(void)
{
	kill_children();
	remove_cgroups();
}

int main(int argc, char **argv)
{
	int tries = TRIES, rc = 0;
	struct sigaction sa = { .sa_handler = on_signal };
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--tries") && i + 1 < argc && atoi(argv[i + 1]) > 0)
			tries = atoi(argv[++i]);
		else {
			fprintf(stderr, "usage: %s [--tries N]\n", argv[0]);
			return 2;
		}
	}
	set_comm("kmodel-repro");
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (getenv("KMODEL_TRACE_MARKER"))
		marker_fd = open(getenv("KMODEL_TRACE_MARKER"), O_WRONLY | O_CLOEXEC);
	if (access("/dev/kvm", R_OK | W_OK) < 0) {
		note("cannot run: /dev/kvm: %s", strerror(errno));
		return 2;
	}
	if (NEEDS_ROOT && geteuid() != 0) {
		note("cannot run: not root (the OOM activities need a memory cgroup of their own)");
		return 2;
	}
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	if (HAVE_ACT(A_OOM) || HAVE_ACT(A_OTHER_MM)) {
		rc = setup_cgroups();
		if (rc) {
			remove_cgroups();
			return rc;
		}
	}
	note("scenario %s: %s", SCENARIO, ACTIVITIES);
	for (int i = 0; NOTES[i]; i++)
		note("note: %s", NOTES[i]);
	for (int t = 1; t <= tries && !interrupted; t++)
		rc |= attempt(t);
	cleanup();
	if (interrupted) {
		note("interrupted");
		return 130;
	}
	return rc ? 1 : 0;
}
