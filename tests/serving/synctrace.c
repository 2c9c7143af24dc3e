/*
 * synctrace: an LD_PRELOAD shim that records, in order, the calls that write data and the calls that make
 * it durable, so a test can check write -> sync -> acknowledge below Python, where the syncing code is not
 * ours (glibc, and SQLite when measured).
 *
 * Built by the test with gcc into a temporary folder (never committed as a binary):
 *     gcc -shared -fPIC -O2 -o synctrace.so synctrace.c -ldl -lpthread
 *
 * Environment:
 *     SYNCTRACE_OUT       trace file prefix; each process writes <prefix>.<pid> (required, else the shim is off)
 *     SYNCTRACE_MATCH     only regular files whose path contains this substring are traced (sockets always are)
 *     SYNCTRACE_SYNC_DELAY_US  sleep this long inside every traced fsync/fdatasync (widens the window in
 *                         which concurrent appends queue up, so group commit is exercised deterministically)
 *
 * One line per call: "<begin> <end> <tid> <call> <fd> <result> <path> <hex data>". begin and end are taken
 * from one process-wide counter before the real call and after it returns, so "A ended before B began" is
 * exactly end(A) < begin(B). Data (write family only) is hex, at most 1 MiB per call.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#define MAX_DATA (1024 * 1024)

static int trace_fd = -1;
static const char *match;
static long delay_us;
static unsigned long counter;
static pthread_mutex_t trace_lock = PTHREAD_MUTEX_INITIALIZER;
static __thread int inside; /* a call made by the shim itself is not traced */

static ssize_t (*real_write)(int, const void *, size_t);
static ssize_t (*real_pwrite)(int, const void *, size_t, off_t);
static ssize_t (*real_pwrite64)(int, const void *, size_t, off_t);
static ssize_t (*real_writev)(int, const struct iovec *, int);
static ssize_t (*real_send)(int, const void *, size_t, int);
static ssize_t (*real_sendto)(int, const void *, size_t, int, const struct sockaddr *, socklen_t);
static ssize_t (*real_sendmsg)(int, const struct msghdr *, int);
static int (*real_fsync)(int);
static int (*real_fdatasync)(int);
static int (*real_sync_file_range)(int, off_t, off_t, unsigned int);

static void resolve(void) {
    real_write = dlsym(RTLD_NEXT, "write");
    real_pwrite = dlsym(RTLD_NEXT, "pwrite");
    real_pwrite64 = dlsym(RTLD_NEXT, "pwrite64");
    real_writev = dlsym(RTLD_NEXT, "writev");
    real_send = dlsym(RTLD_NEXT, "send");
    real_sendto = dlsym(RTLD_NEXT, "sendto");
    real_sendmsg = dlsym(RTLD_NEXT, "sendmsg");
    real_fsync = dlsym(RTLD_NEXT, "fsync");
    real_fdatasync = dlsym(RTLD_NEXT, "fdatasync");
    real_sync_file_range = dlsym(RTLD_NEXT, "sync_file_range");
}

__attribute__((constructor)) static void start(void) {
    resolve();
    const char *out = getenv("SYNCTRACE_OUT");
    match = getenv("SYNCTRACE_MATCH");
    const char *delay = getenv("SYNCTRACE_SYNC_DELAY_US");
    delay_us = delay ? atol(delay) : 0;
    if (!out) return;
    char path[4096];
    snprintf(path, sizeof path, "%s.%d", out, (int)getpid());
    /* O_CLOEXEC: a child that execs opens its own file (the constructor runs again there). */
    trace_fd = (int)syscall(SYS_openat, AT_FDCWD, path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
}

static unsigned long tick(void) { return __atomic_add_fetch(&counter, 1, __ATOMIC_SEQ_CST); }

/* Which calls to trace: sockets always (answers leave through them); regular files whose path matches. */
static int describe(int fd, char *path, size_t size) {
    char link[64];
    snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
    ssize_t length = readlink(link, path, size - 1);
    if (length < 0) return 0;
    path[length] = '\0';
    if (strncmp(path, "socket:", 7) == 0) return 1;
    return match != NULL && strstr(path, match) != NULL;
}

static void emit(unsigned long begin, unsigned long end, const char *call, int fd, long result,
                 const char *path, const struct iovec *parts, int count) {
    static const char digits[] = "0123456789abcdef";
    size_t total = 0;
    for (int index = 0; index < count; index++) total += parts[index].iov_len;
    if (total > MAX_DATA) total = MAX_DATA;
    if (result >= 0 && (size_t)result < total && parts != NULL) total = (size_t)result; /* what was written */
    char head[4600];
    int head_length = snprintf(head, sizeof head, "%lu %lu %ld %s %d %ld %s ", begin, end,
                               (long)syscall(SYS_gettid), call, fd, result, path);
    char *line = malloc((size_t)head_length + 2 * total + 2);
    if (line == NULL) return;
    memcpy(line, head, (size_t)head_length);
    size_t position = (size_t)head_length;
    size_t left = total;
    for (int index = 0; index < count && left > 0; index++) {
        const unsigned char *bytes = parts[index].iov_base;
        size_t take = parts[index].iov_len < left ? parts[index].iov_len : left;
        for (size_t byte = 0; byte < take; byte++) {
            line[position++] = digits[bytes[byte] >> 4];
            line[position++] = digits[bytes[byte] & 15];
        }
        left -= take;
    }
    if (position == (size_t)head_length) line[position++] = '-';
    line[position++] = '\n';
    pthread_mutex_lock(&trace_lock);
    size_t done = 0;
    while (done < position) {
        long written = syscall(SYS_write, trace_fd, line + done, position - done);
        if (written <= 0) break;
        done += (size_t)written;
    }
    pthread_mutex_unlock(&trace_lock);
    free(line);
}

#define TRACED(fd, path) (trace_fd >= 0 && !inside && describe((fd), (path), sizeof(path)))

static ssize_t traced_write(const char *call, int fd, const struct iovec *parts, int count,
                            ssize_t (*invoke)(void *), void *context) {
    char path[4096];
    if (!TRACED(fd, path)) return invoke(context);
    unsigned long begin = tick();
    ssize_t result = invoke(context);
    int saved = errno;
    unsigned long end = tick();
    inside = 1;
    emit(begin, end, call, fd, (long)result, path, parts, count);
    inside = 0;
    errno = saved;
    return result;
}

struct plain { int fd; const void *buffer; size_t size; off_t offset; int flags; const struct sockaddr *to;
               socklen_t to_length; const struct iovec *vector; int count; const struct msghdr *message; };

static ssize_t call_write(void *c) { struct plain *p = c; return real_write(p->fd, p->buffer, p->size); }
static ssize_t call_pwrite(void *c) { struct plain *p = c; return real_pwrite(p->fd, p->buffer, p->size, p->offset); }
static ssize_t call_pwrite64(void *c) {
    struct plain *p = c; return real_pwrite64(p->fd, p->buffer, p->size, p->offset);
}
static ssize_t call_writev(void *c) { struct plain *p = c; return real_writev(p->fd, p->vector, p->count); }
static ssize_t call_send(void *c) { struct plain *p = c; return real_send(p->fd, p->buffer, p->size, p->flags); }
static ssize_t call_sendto(void *c) {
    struct plain *p = c; return real_sendto(p->fd, p->buffer, p->size, p->flags, p->to, p->to_length);
}
static ssize_t call_sendmsg(void *c) { struct plain *p = c; return real_sendmsg(p->fd, p->message, p->flags); }

ssize_t write(int fd, const void *buffer, size_t size) {
    if (!real_write) resolve();
    struct plain p = {.fd = fd, .buffer = buffer, .size = size};
    struct iovec part = {(void *)buffer, size};
    return traced_write("write", fd, &part, 1, call_write, &p);
}

ssize_t pwrite(int fd, const void *buffer, size_t size, off_t offset) {
    if (!real_pwrite) resolve();
    struct plain p = {.fd = fd, .buffer = buffer, .size = size, .offset = offset};
    struct iovec part = {(void *)buffer, size};
    return traced_write("pwrite", fd, &part, 1, call_pwrite, &p);
}

ssize_t pwrite64(int fd, const void *buffer, size_t size, off_t offset) {
    if (!real_pwrite64) resolve();
    struct plain p = {.fd = fd, .buffer = buffer, .size = size, .offset = offset};
    struct iovec part = {(void *)buffer, size};
    return traced_write("pwrite64", fd, &part, 1, call_pwrite64, &p);
}

ssize_t writev(int fd, const struct iovec *vector, int count) {
    if (!real_writev) resolve();
    struct plain p = {.fd = fd, .vector = vector, .count = count};
    return traced_write("writev", fd, vector, count, call_writev, &p);
}

ssize_t send(int fd, const void *buffer, size_t size, int flags) {
    if (!real_send) resolve();
    struct plain p = {.fd = fd, .buffer = buffer, .size = size, .flags = flags};
    struct iovec part = {(void *)buffer, size};
    return traced_write("send", fd, &part, 1, call_send, &p);
}

ssize_t sendto(int fd, const void *buffer, size_t size, int flags, const struct sockaddr *to,
               socklen_t to_length) {
    if (!real_sendto) resolve();
    struct plain p = {.fd = fd, .buffer = buffer, .size = size, .flags = flags, .to = to,
                      .to_length = to_length};
    struct iovec part = {(void *)buffer, size};
    return traced_write("sendto", fd, &part, 1, call_sendto, &p);
}

ssize_t sendmsg(int fd, const struct msghdr *message, int flags) {
    if (!real_sendmsg) resolve();
    struct plain p = {.fd = fd, .message = message, .flags = flags};
    return traced_write("sendmsg", fd, message->msg_iov, (int)message->msg_iovlen, call_sendmsg, &p);
}

static int traced_sync(const char *call, int fd, int (*invoke)(int)) {
    char path[4096];
    if (!TRACED(fd, path)) return invoke(fd);
    unsigned long begin = tick();
    if (delay_us > 0) {
        struct timespec pause = {delay_us / 1000000, (delay_us % 1000000) * 1000};
        nanosleep(&pause, NULL);
    }
    int result = invoke(fd);
    int saved = errno;
    unsigned long end = tick();
    inside = 1;
    emit(begin, end, call, fd, result, path, NULL, 0);
    inside = 0;
    errno = saved;
    return result;
}

int fsync(int fd) {
    if (!real_fsync) resolve();
    return traced_sync("fsync", fd, real_fsync);
}

int fdatasync(int fd) {
    if (!real_fdatasync) resolve();
    return traced_sync("fdatasync", fd, real_fdatasync);
}

int sync_file_range(int fd, off_t offset, off_t size, unsigned int flags) {
    /* Not a durability barrier (it flushes no metadata or device cache): traced so a test can refuse it. */
    if (!real_sync_file_range) resolve();
    char path[4096];
    if (!TRACED(fd, path)) return real_sync_file_range(fd, offset, size, flags);
    unsigned long begin = tick();
    int result = real_sync_file_range(fd, offset, size, flags);
    int saved = errno;
    unsigned long end = tick();
    inside = 1;
    emit(begin, end, "sync_file_range", fd, result, path, NULL, 0);
    inside = 0;
    errno = saved;
    return result;
}
