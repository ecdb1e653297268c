/*
 * prov_cycle.h - one cycle of the provisioner (count, decide, act,
 * publish), and one poll of a follower. Everything is re-derived each time
 * from DescribeMountTargets and the state file, so a provisioner killed at
 * any point and restarted carries on where it was.
 */
#ifndef EFSMT_PROV_CYCLE_H
#define EFSMT_PROV_CYCLE_H

#include "aws_efs.h"
#include "prov_config.h"

#define PROV_CYCLE_FAILED (-1)
#define PROV_CYCLE_SAME 0
#define PROV_CYCLE_CHANGED 1

/* PROV_CYCLE_*: CHANGED when a mount target was created or deleted or a
 * new list was published. */
int prov_cycle(const struct prov_config *c, struct aws_client *aws);
/* One poll of `follow`: the list from SSM (ssm_parameter) or from
 * DescribeMountTargets, to the state file and the local daemons. */
int prov_follow_once(const struct prov_config *c, struct aws_client *aws);

#endif
