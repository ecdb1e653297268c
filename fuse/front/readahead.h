/*
 * readahead.h - the kernel's readahead for the mount, raised to 4 MiB, or
 * more with more lanes per target (readahead.c): main.c finds the mount's sysfs entry once mounted,
 * and the first request after INIT (whose reply resets it) raises it
 * (op_guard.c). Only root may; failing is harmless, so it is only logged.
 */
#ifndef EFSMT_READAHEAD_H
#define EFSMT_READAHEAD_H

void readahead_find(const char *mountpoint, int lanes);
/* Cheap once done: every request calls it. */
void readahead_raise(void);
/* The FUSE max_background that lets the window's READs all be in flight
 * (for INIT; at least FUSE's default of 12). */
unsigned readahead_background(void);

#endif
