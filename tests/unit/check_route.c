/* Rendezvous routing: balance, minimal movement, fail-over order. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backends/backend.h"
#include "routing/route.h"
#include "backends/target.h"
#include "check_run.h"

#define NPATHS 100000
#define MAXT 9

static char paths[NPATHS][48];

static void make_paths(void)
{
	uint64_t x = 0x9e3779b97f4a7c15ull;

	for (int i = 0; i < NPATHS; i++) {
		/* xorshift64: a fixed, repeatable set of paths of varying depth */
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		snprintf(paths[i], sizeof(paths[i]), "/d%u/s%u/f%llx", (unsigned)(x % 97),
			 (unsigned)((x >> 8) % 13), (unsigned long long)(x >> 20));
	}
}

static struct target *fake_target(const char *id)
{
	struct target *t = calloc(1, sizeof(*t));
	t->id = strdup(id);
	t->seed = route_seed(id);
	t->ops = backend_for_scheme("dir");
	atomic_init(&t->refs, 1);
	return t;
}

static struct target *pool[MAXT];

static void setup(void)
{
	char id[32];
	for (int i = 0; i < MAXT; i++) {
		snprintf(id, sizeof(id), "fsmt-%08x", 0x1000 + i * 7919);
		pool[i] = fake_target(id);
	}
}

static void teardown(void)
{
	for (int i = 0; i < MAXT; i++)
		target_put(pool[i]);
}

static struct target *pick(struct route_table *rt, int i)
{
	return route_pick(rt, paths[i], strlen(paths[i]));
}

START_TEST(test_balance)
{
	for (size_t n = 1; n <= 8; n++) {
		struct route_table *rt = route_table_new(pool, n, 1);
		size_t count[MAXT] = {0};
		for (int i = 0; i < NPATHS; i++)
			count[route_pick_index(rt, paths[i], strlen(paths[i]))]++;
		double want = (double)NPATHS / (double)n;
		for (size_t k = 0; k < n; k++)
			ck_assert_msg(count[k] >= want * 0.95 && count[k] <= want * 1.05,
				      "n=%zu target %zu got %zu paths, want %.0f +-5%%", n, k,
				      count[k], want);
		route_table_free(rt);
	}
}
END_TEST

START_TEST(test_add_moves_only_to_new)
{
	for (size_t n = 1; n <= 8; n++) {
		struct route_table *a = route_table_new(pool, n, 1);
		struct route_table *b = route_table_new(pool, n + 1, 2);
		size_t moved = 0;
		for (int i = 0; i < NPATHS; i++) {
			struct target *x = pick(a, i), *y = pick(b, i);
			if (x != y) {
				moved++;
				ck_assert_ptr_eq(y, pool[n]);
			}
		}
		double frac = (double)moved / NPATHS, ideal = 1.0 / (double)(n + 1);
		ck_assert_msg(frac >= 0.9 * ideal && frac <= 1.1 * ideal,
			      "adding target %zu moved %.4f of paths, want %.4f +-10%%", n + 1,
			      frac, ideal);
		route_table_free(a);
		route_table_free(b);
	}
}
END_TEST

START_TEST(test_remove_moves_only_its_own)
{
	for (size_t n = 2; n <= 8; n++) {
		struct route_table *full = route_table_new(pool, n, 1);
		for (size_t gone = 0; gone < n; gone++) {
			struct target *rest[MAXT];
			size_t m = 0;
			for (size_t k = 0; k < n; k++)
				if (k != gone)
					rest[m++] = pool[k];
			struct route_table *less = route_table_new(rest, m, 2);
			for (int i = 0; i < NPATHS; i += 7) {
				struct target *x = pick(full, i), *y = pick(less, i);
				if (x != pool[gone])
					ck_assert_ptr_eq(x, y);
				else
					ck_assert_ptr_ne(y, pool[gone]);
			}
			route_table_free(less);
		}
		route_table_free(full);
	}
}
END_TEST

START_TEST(test_failover_is_score_order)
{
	struct route_table *rt = route_table_new(pool, 8, 1);
	size_t order[8];

	for (int i = 0; i < NPATHS; i += 11) {
		const char *p = paths[i];
		route_order(rt, p, strlen(p), order);
		ck_assert_uint_eq(order[0], route_pick_index(rt, p, strlen(p)));
		for (size_t k = 1; k < 8; k++)
			ck_assert(route_score(rt->t[order[k - 1]]->seed, p, strlen(p)) >=
				  route_score(rt->t[order[k]]->seed, p, strlen(p)));
		/* Without the first choice, the path goes to the second. */
		struct target *rest[8];
		size_t m = 0;
		for (size_t k = 0; k < 8; k++)
			if (k != order[0])
				rest[m++] = rt->t[k];
		struct route_table *less = route_table_new(rest, m, 2);
		ck_assert_ptr_eq(route_pick(less, p, strlen(p)), rt->t[order[1]]);
		route_table_free(less);
	}
	route_table_free(rt);
}
END_TEST

/* A down target's paths go to their second choice; no other path moves;
 * with every target down, paths keep their first choice. */
START_TEST(test_down_target_skipped)
{
	struct route_table *rt = route_table_new(pool, 4, 1);
	size_t order[4];
	int moved = 0;

	atomic_store(&pool[2]->state, TARGET_DOWN);
	for (int i = 0; i < NPATHS; i += 7) {
		const char *p = paths[i];
		route_order(rt, p, strlen(p), order);
		size_t want = rt->t[order[0]] == pool[2] ? order[1] : order[0];
		moved += rt->t[order[0]] == pool[2];
		ck_assert_uint_eq(route_pick_index(rt, p, strlen(p)), want);
	}
	ck_assert_int_gt(moved, NPATHS / 7 / 8);
	for (int k = 0; k < 4; k++)
		atomic_store(&pool[k]->state, TARGET_DOWN);
	for (int i = 0; i < NPATHS; i += 101) {
		route_order(rt, paths[i], strlen(paths[i]), order);
		ck_assert_uint_eq(route_pick_index(rt, paths[i], strlen(paths[i])), order[0]);
	}
	for (int k = 0; k < 4; k++)
		atomic_store(&pool[k]->state, TARGET_UP);
	route_table_free(rt);
}
END_TEST

START_TEST(test_known_value)
{
	/* Pins the hash: other hosts and the tests' own implementation must
	 * agree. XXH3_64("") with seed 0 is 0x2d06800538d394c2. */
	ck_assert_uint_eq(route_seed(""), 0x2d06800538d394c2ull);
	struct route_table *rt = route_table_new(pool, 3, 1);
	ck_assert_ptr_eq(route_pick(rt, "/", 1), route_pick(rt, "/", 1));
	route_table_free(rt);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("route");
	TCase *tc = tcase_create("hrw");
	make_paths();
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_balance);
	tcase_add_test(tc, test_add_moves_only_to_new);
	tcase_add_test(tc, test_remove_moves_only_its_own);
	tcase_add_test(tc, test_failover_is_score_order);
	tcase_add_test(tc, test_down_target_skipped);
	tcase_add_test(tc, test_known_value);
	suite_add_tcase(s, tc);
	return check_run(s);
}
