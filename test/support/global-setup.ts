// Filled in by the PostgreSQL adapter work: checks (or starts) the services the suite needs.
export default async function setup(): Promise<void> {}
