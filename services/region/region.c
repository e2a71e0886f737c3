/* The region service (sharebuy.region.v1.Region): the GB/T 2260 division tree, operating centres and
 * sub-centres, who may approve merchants where, and the per-region economic settings. See docs/region.md. */
#include "region.h"

#include "region_internal.h"

static const sb_rpc_method region_methods[] = {
        { "GetDistrict", region_get_district },
        { "ListChildren", region_list_children },
        { "SearchDistricts", region_search_districts },
        { "ApplyCentre", region_apply_centre },
        { "ApproveCentre", region_approve_centre },
        { "RejectCentre", region_reject_centre },
        { "CreateSubCentre", region_create_sub_centre },
        { "SuspendCentre", region_suspend_centre },
        { "ResumeCentre", region_resume_centre },
        { "GetCentre", region_get_centre },
        { "ListCentres", region_list_centres },
        { "AddCentreOperator", region_add_centre_operator },
        { "RemoveCentreOperator", region_remove_centre_operator },
        { "CentresForDistrict", region_centres_for_district },
        { "GetCentreRevision", region_get_centre_revision },
        { "CanApproveMerchant", region_can_approve_merchant },
        { "GetRegionSettings", region_get_settings },
        { "SetRegionSettings", region_set_settings },
        { "ListSettingsHistory", region_list_settings_history },
};

const sb_service_def region_service = {
        .name = "region",
        .desc = &sharebuy__region__v1__region__descriptor,
        .methods = region_methods,
        .n_methods = sizeof region_methods / sizeof region_methods[0],
        .default_port = 50055,
        .default_metrics_port = 9155,
};
