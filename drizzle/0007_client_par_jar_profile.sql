ALTER TABLE `clients` ADD `require_pushed_authorization_requests` integer DEFAULT false NOT NULL;--> statement-breakpoint
ALTER TABLE `clients` ADD `request_object_signing_alg` text;--> statement-breakpoint
ALTER TABLE `clients` ADD `security_profile` text;