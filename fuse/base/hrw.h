/*
 * hrw.h - the two hashes of rendezvous (highest random weight) routing:
 * a target's seed from its id, and a path's score for a target.
 *
 * score(target, path) = XXH3_64(path, seed = XXH3_64(target id)). A target
 * takes its seed when it is made (target.c); the route table compares the
 * scores (route.c). Neither needs the other for that, so the hashes live
 * here, below both.
 */
#ifndef EFSMT_HRW_H
#define EFSMT_HRW_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <xxhash.h>

static inline uint64_t route_seed(const char *id)
{
	return XXH3_64bits(id, strlen(id));
}

static inline uint64_t route_score(uint64_t seed, const char *path, size_t len)
{
	return XXH3_64bits_withSeed(path, len, seed);
}

#endif
