/*
 * The sconify dlopen guard (docs/dev/guard.md): preloaded by the shim into dynamic binaries, it
 * interposes dlopen, dlmopen and dlerror and applies SCONE_ALLOW_DLOPEN:
 *   0  every dlopen of a library fails;
 *   1  a library loads only when the SHA-256 of its file is in the authenticated manifest, and
 *      the loader then reads that very open file through /proc/self/fd/N;
 *   2  everything loads, and each load is logged on stderr.
 * The shim passes the policy as SCONIFY_GUARD=<policy>:<manifest sha256>:<manifest path>.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sha256.h"

#define EXPORT __attribute__((visibility("default")))
#define MAX_MANIFEST (64u << 20)

#if defined(__x86_64__)
#define MULTIARCH "x86_64-linux-gnu"
#elif defined(__aarch64__)
#define MULTIARCH "aarch64-linux-gnu"
#else
#error "the guard knows the library directories of x86_64 and aarch64 only"
#endif

typedef void *(*dlopen_fn)(const char *, int);
typedef void *(*dlmopen_fn)(Lmid_t, const char *, int);
typedef char *(*dlerror_fn)(void);

static dlopen_fn real_dlopen;
static dlmopen_fn real_dlmopen;
static dlerror_fn real_dlerror;

/* -1: SCONIFY_GUARD missing or malformed, which refuses like 0 but says why. */
static int policy = -1;
static char manifest_path[4096];
static uint8_t manifest_sum[32];
static const char *library_path;

static pthread_once_t manifest_once = PTHREAD_ONCE_INIT;
static uint8_t (*digests)[32];
static size_t n_digests;
static char manifest_error[512];

/* Descriptors of loaded files, kept open for good: the loader knows each library by the name
 * /proc/self/fd/N, so a reused number would make a later dlopen return the wrong library. */
struct kept {
	dev_t dev;
	ino_t ino;
	int fd;
};
static pthread_mutex_t kept_lock = PTHREAD_MUTEX_INITIALIZER;
static struct kept *kept;
static size_t n_kept, cap_kept;

static __thread char refusal[1024];
static __thread int refusal_pending;

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

static int parse_hex32(const char *s, uint8_t out[32])
{
	for (int i = 0; i < 32; i++) {
		int hi = hexval(s[2 * i]), lo = hexval(s[2 * i + 1]);
		if (hi < 0 || lo < 0)
			return -1;
		out[i] = (uint8_t)(hi << 4 | lo);
	}
	return 0;
}

static void to_hex(const uint8_t sum[32], char out[65])
{
	static const char digits[] = "0123456789abcdef";
	for (int i = 0; i < 32; i++) {
		out[2 * i] = digits[sum[i] >> 4];
		out[2 * i + 1] = digits[sum[i] & 15];
	}
	out[64] = 0;
}

__attribute__((constructor)) static void guard_init(void)
{
	real_dlopen = (dlopen_fn)dlsym(RTLD_NEXT, "dlopen");
	real_dlmopen = (dlmopen_fn)dlsym(RTLD_NEXT, "dlmopen");
	real_dlerror = (dlerror_fn)dlsym(RTLD_NEXT, "dlerror");
	library_path = getenv("LD_LIBRARY_PATH");
	const char *v = getenv("SCONIFY_GUARD");
	if (!v || (v[0] != '0' && v[0] != '1' && v[0] != '2') || v[1] != ':' || strlen(v) < 67 || v[66] != ':' ||
	    parse_hex32(v + 2, manifest_sum) || strlen(v + 67) >= sizeof manifest_path)
		return;
	strcpy(manifest_path, v + 67);
	policy = v[0] - '0';
}

static int cmp_digest(const void *a, const void *b) { return memcmp(a, b, 32); }

/* Reads one JSON string of the canonical manifest starting at *p (at the opening quote); only its
 * end matters for the keys, so escapes are skipped, not decoded. */
static const char *skip_string(const char *p, const char *end)
{
	if (p >= end || *p != '"')
		return NULL;
	for (p++; p < end; p++) {
		if (*p == '\\')
			p++;
		else if (*p == '"')
			return p + 1;
	}
	return NULL;
}

static int parse_manifest(const char *p, const char *end)
{
	static const char head[] = "{\"files\":{";
	if ((size_t)(end - p) < sizeof head - 1 || memcmp(p, head, sizeof head - 1))
		return -1;
	p += sizeof head - 1;
	size_t cap = 0;
	while (p < end && *p != '}') {
		if (n_digests && *p++ != ',')
			return -1;
		if (!(p = skip_string(p, end)) || p >= end || *p++ != ':')
			return -1;
		if (end - p < 66 || p[0] != '"' || p[65] != '"')
			return -1;
		if (n_digests == cap) {
			cap = cap ? 2 * cap : 1024;
			void *grown = realloc(digests, cap * 32);
			if (!grown)
				return -1;
			digests = grown;
		}
		if (parse_hex32(p + 1, digests[n_digests]))
			return -1;
		n_digests++;
		p += 66;
	}
	if (p >= end)
		return -1;
	qsort(digests, n_digests, 32, cmp_digest);
	return 0;
}

static void load_manifest(void)
{
	int fd = open(manifest_path, O_RDONLY | O_CLOEXEC);
	struct stat st;
	if (fd < 0 || fstat(fd, &st) || !S_ISREG(st.st_mode) || st.st_size > MAX_MANIFEST) {
		snprintf(manifest_error, sizeof manifest_error, "cannot read the manifest %s: %s", manifest_path,
			 fd < 0 ? strerror(errno) : "not a regular file of at most 64 MiB");
		if (fd >= 0)
			close(fd);
		return;
	}
	char *buf = malloc((size_t)st.st_size + 1);
	size_t got = 0;
	while (buf && got < (size_t)st.st_size) {
		ssize_t n = read(fd, buf + got, (size_t)st.st_size - got);
		if (n <= 0)
			break;
		got += (size_t)n;
	}
	close(fd);
	uint8_t sum[32];
	struct sha256 h;
	sha256_init(&h);
	if (buf)
		sha256_update(&h, buf, got);
	sha256_final(&h, sum);
	if (!buf || got != (size_t)st.st_size || memcmp(sum, manifest_sum, 32)) {
		snprintf(manifest_error, sizeof manifest_error, "the manifest %s is not the one the shim measured",
			 manifest_path);
	} else if (parse_manifest(buf, buf + got)) {
		free(digests);
		digests = NULL;
		n_digests = 0;
		snprintf(manifest_error, sizeof manifest_error, "the manifest %s is not canonical JSON of version 1",
			 manifest_path);
	}
	free(buf);
}

static const char *policy_text(void)
{
	switch (policy) {
	case 0:
		return "SCONE_ALLOW_DLOPEN=0: no library may be loaded after start";
	case 1:
		return "SCONE_ALLOW_DLOPEN=1: only libraries in the authenticated manifest";
	default:
		return "SCONIFY_GUARD is missing or malformed, so every load is refused";
	}
}

__attribute__((format(printf, 1, 2))) static void *refuse(const char *fmt, ...)
{
	char why[768];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(why, sizeof why, fmt, ap);
	va_end(ap);
	if (real_dlerror)
		real_dlerror(); /* drop an older error of the loader's, as a failed dlopen would */
	snprintf(refusal, sizeof refusal, "sconify guard: %s", why);
	refusal_pending = 1;
	return NULL;
}

/* Opens the file the name stands for: a name with a slash as given, others in LD_LIBRARY_PATH
 * (as the application started with) and then the system directories. */
static int open_library(const char *name, char *found, size_t found_size)
{
	if (strchr(name, '/')) {
		snprintf(found, found_size, "%s", name);
		return open(name, O_RDONLY | O_CLOEXEC);
	}
	static const char system_dirs[] =
		"/lib/" MULTIARCH ":/usr/lib/" MULTIARCH ":/lib64:/lib:/usr/lib";
	const char *lists[2] = {library_path ? library_path : "", system_dirs};
	for (int l = 0; l < 2; l++) {
		for (const char *d = lists[l]; *d;) {
			size_t len = strcspn(d, ":;");
			if (len > 0 && (size_t)snprintf(found, found_size, "%.*s/%s", (int)len, d, name) < found_size) {
				int fd = open(found, O_RDONLY | O_CLOEXEC);
				struct stat st;
				if (fd >= 0 && fstat(fd, &st) == 0 && S_ISREG(st.st_mode))
					return fd;
				if (fd >= 0)
					close(fd);
			}
			d += len;
			if (*d)
				d++;
		}
	}
	snprintf(found, found_size, "%s", name);
	errno = ENOENT;
	return -1;
}

static int hash_fd(int fd, uint8_t sum[32])
{
	static const size_t chunk = 1 << 16;
	char *buf = malloc(chunk);
	if (!buf)
		return -1;
	struct sha256 h;
	sha256_init(&h);
	off_t off = 0;
	for (;;) {
		ssize_t n = pread(fd, buf, chunk, off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			free(buf);
			return -1;
		}
		if (n == 0)
			break;
		sha256_update(&h, buf, (size_t)n);
		off += n;
	}
	free(buf);
	sha256_final(&h, sum);
	return 0;
}

/* The descriptor to load from: an earlier one for the same file, or fd itself (kept). */
static int keep_fd(int fd, const struct stat *st)
{
	pthread_mutex_lock(&kept_lock);
	for (size_t i = 0; i < n_kept; i++) {
		if (kept[i].dev == st->st_dev && kept[i].ino == st->st_ino) {
			int old = kept[i].fd;
			pthread_mutex_unlock(&kept_lock);
			close(fd);
			return old;
		}
	}
	if (n_kept == cap_kept) {
		size_t cap = cap_kept ? 2 * cap_kept : 16;
		void *grown = realloc(kept, cap * sizeof *kept);
		if (!grown) {
			pthread_mutex_unlock(&kept_lock);
			return fd; /* still correct, only not reused */
		}
		kept = grown;
		cap_kept = cap;
	}
	kept[n_kept++] = (struct kept){st->st_dev, st->st_ino, fd};
	pthread_mutex_unlock(&kept_lock);
	return fd;
}

/* Applies the policy to one request. Returns 1 to pass the name on unchanged, 0 to load *path
 * instead (a /proc/self/fd path), -1 when refused (the dlerror text is set). */
static int check(const char *file, int mode, char *path, size_t path_size)
{
	refusal_pending = 0;
	if (!file || (mode & RTLD_NOLOAD))
		return 1; /* the main program, or only a look-up: nothing new is loaded */
	if (policy == 2) {
		char line[1200];
		int n = snprintf(line, sizeof line,
				 "[SCONIFY|WARN] dlopen %s: loaded without verification (SCONE_ALLOW_DLOPEN=2)\n", file);
		if (n > 0)
			(void)!write(2, line, (size_t)n < sizeof line ? (size_t)n : sizeof line - 1);
		return 1;
	}
	if (policy != 1) {
		refuse("dlopen of %s refused (%s)", file, policy_text());
		return -1;
	}
	pthread_once(&manifest_once, load_manifest);
	if (manifest_error[0]) {
		refuse("dlopen of %s refused (%s): %s", file, policy_text(), manifest_error);
		return -1;
	}
	char found[4096];
	int fd = open_library(file, found, sizeof found);
	struct stat st;
	if (fd < 0) {
		refuse("dlopen of %s refused (%s): cannot open it: %s", file, policy_text(), strerror(errno));
		return -1;
	}
	uint8_t sum[32];
	if (fstat(fd, &st) || !S_ISREG(st.st_mode) || hash_fd(fd, sum)) {
		close(fd);
		refuse("dlopen of %s refused (%s): %s is not a readable regular file", file, policy_text(), found);
		return -1;
	}
	if (!bsearch(sum, digests, n_digests, 32, cmp_digest)) {
		char hex[65];
		to_hex(sum, hex);
		close(fd);
		refuse("dlopen of %s refused (%s): %s (sha256 %s) is not in it", file, policy_text(), found, hex);
		return -1;
	}
	snprintf(path, path_size, "/proc/self/fd/%d", keep_fd(fd, &st));
	return 0;
}

EXPORT void *dlopen(const char *file, int mode)
{
	char path[64];
	int c = check(file, mode, path, sizeof path);
	if (c < 0)
		return NULL;
	return real_dlopen(c ? file : path, mode);
}

EXPORT void *dlmopen(Lmid_t lmid, const char *file, int mode)
{
	char path[64];
	int c = check(file, mode, path, sizeof path);
	if (c < 0)
		return NULL;
	return real_dlmopen(lmid, c ? file : path, mode);
}

EXPORT char *dlerror(void)
{
	if (refusal_pending) {
		refusal_pending = 0;
		return refusal;
	}
	return real_dlerror();
}
