/* libFuzzer target for the control request parser: any bytes must give
 * either a request or a one-line error, never a crash or a leak. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ctl_proto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct ctl_request r;
	char err[512];

	if (ctl_parse_request((const char *)data, size, &r, err, sizeof(err)) == 0) {
		char *a = ctl_answer_ok(json_deep_copy(r.root));
		free(a);
		ctl_request_free(&r);
	} else if (memchr(err, '\n', strnlen(err, sizeof(err)))) {
		abort(); /* errors are one line */
	}
	return 0;
}
