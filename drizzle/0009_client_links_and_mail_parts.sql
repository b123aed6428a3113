ALTER TABLE `clients` ADD `logo_uri` text;--> statement-breakpoint
ALTER TABLE `clients` ADD `client_uri` text;--> statement-breakpoint
ALTER TABLE `clients` ADD `policy_uri` text;--> statement-breakpoint
ALTER TABLE `clients` ADD `tos_uri` text;--> statement-breakpoint
ALTER TABLE `dev_mailbox` ADD `from` text;--> statement-breakpoint
ALTER TABLE `dev_mailbox` ADD `html` text;