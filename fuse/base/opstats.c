#include "opstats.h"

static const char *const names[OP_COUNT] = {
#define OPSTATS_NAME(e, s) s,
	OPSTATS_OPS(OPSTATS_NAME)
#undef OPSTATS_NAME
};

const char *opstats_name(enum opstats_op op)
{
	return (unsigned)op < OP_COUNT ? names[op] : "?";
}

unsigned opstats_bucket(uint64_t us)
{
	if (us < OPSTATS_SUB)
		return (unsigned)us;
	unsigned p = 63 - (unsigned)__builtin_clzll(us); /* >= 2 */
	unsigned sub = (unsigned)(us >> (p - 2)) & (OPSTATS_SUB - 1);
	unsigned b = OPSTATS_SUB + (p - 2) * OPSTATS_SUB + sub;
	return b < OPSTATS_BUCKETS ? b : OPSTATS_BUCKETS - 1;
}

uint64_t opstats_bucket_upper(unsigned b)
{
	if (b < OPSTATS_SUB)
		return b + 1;
	unsigned p = (b - OPSTATS_SUB) / OPSTATS_SUB + 2;
	unsigned sub = (b - OPSTATS_SUB) % OPSTATS_SUB;
	return (uint64_t)(OPSTATS_SUB + sub + 1) << (p - 2);
}

void opstats_record(struct opstats *s, uint64_t us, uint64_t bytes, int failed)
{
	atomic_fetch_add_explicit(&s->count, 1, memory_order_relaxed);
	if (failed)
		atomic_fetch_add_explicit(&s->errors, 1, memory_order_relaxed);
	if (bytes)
		atomic_fetch_add_explicit(&s->bytes, bytes, memory_order_relaxed);
	atomic_fetch_add_explicit(&s->hist[opstats_bucket(us)], 1, memory_order_relaxed);
}

uint64_t opstats_quantile(const uint64_t *hist, double q)
{
	uint64_t total = 0, seen = 0;

	for (unsigned b = 0; b < OPSTATS_BUCKETS; b++)
		total += hist[b];
	if (total == 0)
		return 0;
	/* The smallest bucket holding the ceil(q * total)-th value. */
	uint64_t rank = (uint64_t)(q * (double)total + 0.999999);
	if (rank == 0)
		rank = 1;
	for (unsigned b = 0; b < OPSTATS_BUCKETS; b++) {
		seen += hist[b];
		if (seen >= rank)
			return opstats_bucket_upper(b);
	}
	return opstats_bucket_upper(OPSTATS_BUCKETS - 1);
}
