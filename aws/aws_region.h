/* aws_region.h - what a region name says about its endpoints. */
#ifndef EFSMT_AWS_REGION_H
#define EFSMT_AWS_REGION_H

#include <string.h>

/* The DNS suffix of the region's endpoints: amazonaws.com.cn in the China
 * regions (cn-north-1, cn-northwest-1), amazonaws.com elsewhere. */
static inline const char *aws_dns_suffix(const char *region)
{
	return strncmp(region, "cn-", 3) == 0 ? "amazonaws.com.cn" : "amazonaws.com";
}

#endif
