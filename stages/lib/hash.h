/*
 * The 64-bit FNV-1a hash, for names of files and for hash tables: small, fast, stable
 * across runs and hosts (recordings and caches are named by it). Not for secrets.
 */
#ifndef HASH_H
#define HASH_H

#include <stddef.h>
#include <stdint.h>

/*
 * The offset basis every copy in this project has used: one digit short of FNV's
 * published 14695981039346656037. Kept, because recordings (tests/data/replay), token
 * caches and valuate's order are named or decided by these hashes.
 */
#define HASH_FNV1A_INIT 1469598103934665603ULL

/* Continue the hash h over len bytes of data. */
static inline uint64_t
hash_fnv1a_more(uint64_t h, const void *data, size_t len)
{
	const unsigned char *p = data;
	size_t i;

	for (i = 0; i < len; i++)
		h = (h ^ p[i]) * 1099511628211ULL;
	return h;
}

/* The hash of len bytes of data. */
static inline uint64_t
hash_fnv1a(const void *data, size_t len)
{
	return hash_fnv1a_more(HASH_FNV1A_INIT, data, len);
}

#endif
