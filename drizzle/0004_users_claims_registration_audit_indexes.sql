ALTER TABLE `clients` ADD `extra_claims` text DEFAULT '[]' NOT NULL;--> statement-breakpoint
ALTER TABLE `clients` ADD `registration_token_hash` text;--> statement-breakpoint
ALTER TABLE `users` ADD `groups` text DEFAULT '[]' NOT NULL;--> statement-breakpoint
ALTER TABLE `users` ADD `claims` text DEFAULT '{}' NOT NULL;--> statement-breakpoint
CREATE INDEX `audit_log_type` ON `audit_log` (`type`,`occurred_at`);--> statement-breakpoint
CREATE INDEX `audit_log_client_id` ON `audit_log` (`client_id`,`occurred_at`);--> statement-breakpoint
CREATE INDEX `audit_log_recorded_at` ON `audit_log` (`recorded_at`);