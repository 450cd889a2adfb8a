//! The server over HTTP, in-process, on SQLite and (with `DATABASE_URL`) on PostgreSQL.

mod analytics;
mod apps;
mod billing;
mod branding;
mod cli;
mod edge;
mod flows;
mod limits;
mod money;
mod operations;
mod org_billing;
mod org_space;
mod orgs;
mod pages;
mod preview;
mod process;
mod reads;
mod sso;
mod support;
mod uploads;

/// Instantiates each scenario of a module ([`flows`] by default) per backend.
macro_rules! per_backend {
    ($($name:ident),* $(,)?) => {
        per_backend!(@module flows sqlite postgres $($name),*);
    };
    (@module $module:ident $sqlite:ident $postgres:ident $($name:ident),* $(,)?) => {
        mod $sqlite {
            $(
                #[tokio::test]
                async fn $name() {
                    crate::$module::$name(crate::support::Db::sqlite().await).await;
                }
            )*
        }
        mod $postgres {
            $(
                #[tokio::test]
                #[cfg_attr(not(appforge_pg), ignore = "needs DATABASE_URL (PostgreSQL)")]
                async fn $name() {
                    crate::$module::$name(crate::support::Db::postgres().await).await;
                }
            )*
        }
    };
}

per_backend!(
    @module apps apps_sqlite apps_postgres
    generations_are_saved_as_versions,
    racing_modifications_conflict_naming_the_file,
    another_users_app_is_not_found,
    the_preview_shows_the_published_version_only,
    the_zip_equals_the_version_files,
    delete_then_undelete,
);

per_backend!(
    @module preview preview_sqlite preview_postgres
    a_versions_preview_is_built_and_framed_behind_a_ticket,
    build_errors_name_their_file_line_and_column,
    a_published_app_previews_for_anyone,
    a_preview_origin_serves_the_frames,
    the_demo_app_previews_offline_with_react,
);

per_backend!(
    @module branding branding_sqlite branding_postgres
    an_admin_brands_the_org_and_members_see_it,
    an_org_app_page_shows_the_org_name_and_public_logo,
);

per_backend!(
    @module analytics analytics_sqlite analytics_postgres
    a_generation_is_recorded_and_reported,
    a_quota_denial_is_recorded,
    failed_and_cancelled_jobs_are_recorded,
    sign_in_is_seen_once_per_user_per_day,
    the_metrics_route_needs_the_token_and_a_sane_range,
    prometheus_shows_todays_figures,
    errors_reach_sentry_with_tags_and_no_secrets,
    a_graceful_shutdown_writes_the_buffered_events,
);

per_backend!(
    generate_streams_events_and_completes,
    modify_and_plan_phases_complete,
    sixth_free_generation_is_refused,
    cancel_pending_refunds,
    cancel_running_job,
    lost_settlements_are_reconciled,
    another_users_job_is_not_found,
    bad_bodies_are_field_level_400s,
    chat_streams_deltas_then_done,
    finished_job_events_replay_state_then_terminal,
    list_is_newest_first_and_paginated,
    every_listed_route_is_served,
    ready_once_migrated,
);

per_backend!(
    @module operations operations_sqlite operations_postgres
    the_periodic_pass_prunes_old_jobs_and_erases_purged_apps,
    a_long_queue_raises_a_logged_and_counted_alert,
    anonymous_users_are_refused_by_default,
);

per_backend!(
    @module money money_sqlite money_postgres
    the_21st_free_chat_of_a_day_is_refused,
    a_chat_cut_mid_stream_still_pays_its_tokens,
    a_chat_the_provider_failed_is_refunded,
    model_calls_ask_for_the_plans_output_tokens,
    requests_beyond_the_plan_are_refused_before_reserving,
    hostile_jobs_pay_what_the_provider_reported,
    waiting_jobs_keep_their_reservations,
    operator_retries_are_paid_for_or_marked_free,
    a_users_running_jobs_are_capped_by_their_plan,
    reconciliation_releases_reservations_of_jobs_that_are_gone,
);

per_backend!(
    @module pages pages_sqlite pages_postgres
    admin_routes_are_closed_without_a_configured_token,
    admin_routes_need_the_admin_token,
    admin_stats_describe_the_queue,
    admin_retry_and_cancel_any_users_job,
    admin_events_stream_statistics,
    completed_apps_download_as_zip,
    pages_are_html_with_a_content_security_policy,
    org_pages_are_html_with_a_content_security_policy,
    a_published_app_is_a_page_for_browsers_and_json_for_clients,
    assets_have_types_and_cache_validators,
);

per_backend!(
    @module org_space org_space_sqlite org_space_postgres
    every_org_space_route_answers_each_caller_as_the_permission_table_says,
    an_orgs_resources_and_quota_are_the_orgs,
    operator_actions_on_an_orgs_job_are_in_its_audit_log,
    an_orgs_cap_per_member_holds_back_that_member_only,
);

per_backend!(
    @module orgs orgs_sqlite orgs_postgres
    every_org_route_answers_each_caller_as_the_permission_table_says,
    the_last_owner_stays,
    invitations_expire_are_used_once_and_revoke,
    revoked_keys_and_deleted_orgs_lose_access_at_once,
    the_audit_log_filters_verifies_and_exports,
    invitations_are_mailed_with_smtp_settings,
);

per_backend!(
    @module org_billing org_billing_sqlite org_billing_postgres
    an_orgs_checkout_and_subscription_set_its_plan_and_seats,
    changing_an_orgs_seats_changes_its_subscription_once,
);

per_backend!(
    @module sso sso_sqlite sso_postgres
    a_login_provisions_the_member_once,
    replays_and_foreign_domains_are_refused,
    scim_provisions_and_deactivates,
    without_a_secrets_key_sso_is_unavailable,
    scim_discovery_answers_without_a_token,
    scim_put_replaces_and_deactivates,
    scim_put_refuses_a_taken_user_name,
    scim_put_on_an_unknown_id_is_404,
);
