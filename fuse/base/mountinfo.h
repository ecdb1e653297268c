/*
 * mountinfo.h - reading /proc/self/mountinfo (proc(5)).
 */
#ifndef EFSMT_MOUNTINFO_H
#define EFSMT_MOUNTINFO_H

/* Undo mountinfo's escapes in place: space, tab, newline and backslash in
 * a path are written as \ooo (three octal digits). */
void mountinfo_unescape(char *s);

#endif
