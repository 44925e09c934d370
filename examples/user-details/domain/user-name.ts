import { Aggregate, assertNever, type Event } from 'eventfold';
import { UserRuleError } from './user.js';

export type UserNameReserved = Event<'UserNameReserved', { userId: string }>;
export type UserNameReleased = Event<'UserNameReleased', { userId: string }>;
export type UserNameEvent = UserNameReserved | UserNameReleased;

/**
 * One stream per user name (`username-<name>`). Reserving it is appended in the same atomic step
 * as the user's own event, with the version the reservation stream was read at, so two
 * registrations of one name cannot both succeed, without any read-model race.
 */
export class UserNameReservation extends Aggregate<UserNameEvent> {
  private holder: string | undefined;

  get heldBy(): string | undefined {
    return this.holder;
  }

  reserve(userId: string): void {
    if (this.holder !== undefined && this.holder !== userId) {
      throw new UserRuleError('USER_NAME_TAKEN', `The user name '${this.id}' is already taken.`);
    }
    if (this.holder === userId) return;
    this.raise('UserNameReserved', { userId });
  }

  release(userId: string): void {
    if (this.holder !== userId) return;
    this.raise('UserNameReleased', { userId });
  }

  protected apply(event: UserNameEvent): void {
    switch (event.type) {
      case 'UserNameReserved':
        this.holder = event.data.userId;
        return;
      case 'UserNameReleased':
        this.holder = undefined;
        return;
      default:
        assertNever(event);
    }
  }
}
