/* Descriptors every backend must refuse with HETRUN_ERR_INVALID, each with the text its
 * message must contain (besides the op name): the field and its value. Shared by
 * `hetrun conform` (through a backend) and test_op_table (through the catalogue). */
#ifndef HETRUN_CONFORM_INVALID_CASES_H
#define HETRUN_CONFORM_INVALID_CASES_H

#include "kernels/catalogue.h"

typedef struct hetrun_invalid_case {
    const char *what;   /**< what is wrong */
    const char *expect; /**< "field value" the message must contain */
    int nargs_delta;    /**< operand count minus the arity (0: the descriptor is the fault) */
} hetrun_invalid_case;

extern const hetrun_invalid_case hetrun_invalid_cases[];
extern const int hetrun_invalid_case_count;

/** The descriptor of case `c` (valid except for the fault it names). */
hetrun_op_desc hetrun_invalid_desc(const hetrun_invalid_case *c);

#endif
