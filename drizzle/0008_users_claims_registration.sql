ALTER TABLE `clients` ADD `extra_claims` text DEFAULT '[]' NOT NULL;--> statement-breakpoint
ALTER TABLE `clients` ADD `registration_token_hash` text;--> statement-breakpoint
ALTER TABLE `users` ADD `groups` text DEFAULT '[]' NOT NULL;--> statement-breakpoint
ALTER TABLE `users` ADD `claims` text DEFAULT '{}' NOT NULL;