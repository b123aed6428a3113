import { StatefulObject, type SchemaComponent } from "./base";

// PLACEHOLDER: replaced by the real implementation in this same change.
export class UserSessions extends StatefulObject {
  protected readonly source = "sessions";
  protected override schema(): SchemaComponent {
    return { name: "sessions", migrations: [] };
  }
}
