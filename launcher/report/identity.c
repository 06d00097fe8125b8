/* Who ran the job, for billing: the scheduler's job and step, the user, the account. */
#include <pwd.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "report/report.h"

/* The first variable of `names` that is set and not empty. */
static const char *first_env(const char *const *names) {
    for (; *names; names++) {
        const char *v = getenv(*names);
        if (v && *v) return v;
    }
    return NULL;
}

static void add_str_or_null(cJSON *o, const char *key, const char *v) {
    if (v)
        cJSON_AddStringToObject(o, key, v);
    else
        cJSON_AddNullToObject(o, key);
}

void hetrun_report_job_identity(cJSON *job_obj, const char *spec_account) {
    static const char *const slurm_job[] = {"SLURM_JOB_ID", "SLURM_JOBID", NULL};
    static const char *const slurm_step[] = {"SLURM_STEP_ID", "SLURM_STEPID", NULL};
    static const char *const slurm_acct[] = {"SLURM_JOB_ACCOUNT", NULL};
    static const char *const pbs_job[] = {"PBS_JOBID", NULL};
    static const char *const pbs_acct[] = {"PBS_ACCOUNT", NULL};
    static const char *const ompi_job[] = {"OMPI_MCA_orte_ess_jobid", "PMIX_NAMESPACE", NULL};
    const char *sched = "none", *job_id = NULL, *step_id = NULL, *account = NULL;
    if ((job_id = first_env(slurm_job)) != NULL) {
        sched = "slurm";
        step_id = first_env(slurm_step);
        account = first_env(slurm_acct);
    } else if ((job_id = first_env(pbs_job)) != NULL) {
        sched = "pbs";
        account = first_env(pbs_acct);
    } else if ((job_id = first_env(ompi_job)) != NULL) {
        sched = "openmpi"; /* mpirun outside a batch system: its job id, no account */
    }
    cJSON_AddStringToObject(job_obj, "scheduler", sched);
    add_str_or_null(job_obj, "job_id", job_id);
    add_str_or_null(job_obj, "step_id", step_id);
    const char *user = getenv("SLURM_JOB_USER");
    struct passwd *pw = user ? NULL : getpwuid(getuid());
    if (!user) user = pw && pw->pw_name ? pw->pw_name : getenv("USER");
    add_str_or_null(job_obj, "user", user);
    /* The scheduler's account is what the centre bills; the spec's is a fallback. */
    const char *src = account ? "scheduler" : spec_account ? "spec" : NULL;
    add_str_or_null(job_obj, "account", account ? account : spec_account);
    add_str_or_null(job_obj, "account_source", src);
}
