/*
 * readahead.h - the kernel's readahead for the mount, raised to
 * EFSMT_READ_AHEAD_KB: main.c finds the mount's sysfs entry once mounted,
 * and the first request after INIT (whose reply resets it) raises it
 * (op_guard.c). Only root may; failing is harmless, so it is only logged.
 */
#ifndef EFSMT_READAHEAD_H
#define EFSMT_READAHEAD_H

void readahead_find(const char *mountpoint);
/* Cheap once done: every request calls it. */
void readahead_raise(void);

#endif
