import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { given } from '../src/testing/index.js';
import { hashPassword, verifyPassword, type PasswordHash } from '../examples/user-details/domain/password.js';
import { User, UserRuleError, type UserEvent } from '../examples/user-details/domain/user.js';
import { UserNameReservation } from '../examples/user-details/domain/user-name.js';

const at = new Date('2026-01-02T03:04:05.000Z');
const hash: PasswordHash = { algorithm: 'scrypt', salt: 'c2FsdA==', hash: 'aGFzaA==', N: 16384, r: 8, p: 1, keyLength: 32 };
const registered: UserEvent = {
  type: 'UserRegistered',
  data: { userName: 'alice', email: 'alice@example.com', password: hash, registeredAt: at.toISOString() },
};
const deactivated: UserEvent = { type: 'UserDeactivated', data: { reason: 'asked', deactivatedAt: at.toISOString() } };

describe('User aggregate (user-details example)', () => {
  it('registers with a normalised name and email', () => {
    const user = User.register('u1', { userName: ' Alice ', email: 'Alice@Example.COM', password: hash }, at);
    expect(user.uncommittedEvents).toEqual([registered]);
    expect(user.version).toBe(1);
  });

  it('refuses a malformed email', () => {
    for (const email of ['alice', 'alice@', '@example.com', 'a b@example.com', 'alice@example', 'alice@@example.com']) {
      expect(() => User.register('u1', { userName: 'alice', email, password: hash }, at)).toThrow(UserRuleError);
    }
    given(User, [registered]).when((u) => u.changeEmail('not-an-email', at)).thenThrows(UserRuleError, /not a valid email/);
  });

  it('changes the password of an active user', () => {
    const next = { ...hash, hash: 'bmV3' };
    given(User, [registered])
      .when((u) => u.changePassword(next, at))
      .then([{ type: 'PasswordChanged', data: { password: next, changedAt: at.toISOString() } }]);
  });

  it('refuses a password change for a deactivated user', () => {
    const error = given(User, [registered, deactivated]).when((u) => u.changePassword(hash, at)).thenThrows(UserRuleError);
    expect(error.code).toBe('USER_DEACTIVATED');
  });

  it('deactivating twice raises nothing the second time (idempotent)', () => {
    given(User, [registered, deactivated]).when((u) => u.deactivate('again', at)).then([]);
  });

  it('an unchanged email raises no event', () => {
    given(User, [registered]).when((u) => u.changeEmail('ALICE@example.com', at)).then([]);
  });

  it('hashes passwords with scrypt: the hash verifies, a wrong password does not, and the clear text is nowhere in the event', async () => {
    const password = 'correct horse battery';
    const stored = await hashPassword(password);
    expect(await verifyPassword(password, stored)).toBe(true);
    expect(await verifyPassword('wrong horse battery', stored)).toBe(false);
    const user = User.register('u1', { userName: 'alice', email: 'a@example.com', password: stored }, at);
    expect(JSON.stringify(user.uncommittedEvents)).not.toContain(password);
    expect(stored.salt).not.toBe((await hashPassword(password)).salt);
  });

  it('property: the state after any valid sequence of changes is the fold of its events', () => {
    const change = fc.oneof(
      fc.record({ kind: fc.constant('email' as const), local: fc.stringMatching(/^[a-z]{1,8}$/) }),
      fc.record({ kind: fc.constant('password' as const), salt: fc.stringMatching(/^[a-z]{1,8}$/) }),
      fc.record({ kind: fc.constant('deactivate' as const) }),
    );
    fc.assert(
      fc.property(fc.array(change, { maxLength: 20 }), (changes) => {
        const user = User.register('u1', { userName: 'alice', email: 'alice@example.com', password: hash }, at);
        for (const c of changes) {
          try {
            if (c.kind === 'email') user.changeEmail(`${c.local}@example.com`, at);
            else if (c.kind === 'password') user.changePassword({ ...hash, salt: c.salt }, at);
            else user.deactivate('test', at);
          } catch (error) {
            expect((error as UserRuleError).code).toBe('USER_DEACTIVATED');
          }
        }
        const recorded = user.uncommittedEvents.map((e, i) => ({
          ...e,
          metadata: {},
          streamId: 'user-u1',
          version: i + 1,
          position: i + 1,
          eventId: `e${i}`,
          recordedAt: at,
        }));
        const rebuilt = User.fromEvents('u1', recorded as never);
        expect(rebuilt.toSnapshot()).toEqual(user.toSnapshot());
        expect(rebuilt.version).toBe(user.version);
      }),
    );
  });
});

describe('UserNameReservation', () => {
  it('reserves a free name, refuses a taken one, and frees it on release', () => {
    given(UserNameReservation, [], { id: 'alice' }).when((r) => r.reserve('u1')).then([{ type: 'UserNameReserved', data: { userId: 'u1' } }]);
    const error = given(UserNameReservation, [{ type: 'UserNameReserved', data: { userId: 'u1' } }], { id: 'alice' })
      .when((r) => r.reserve('u2'))
      .thenThrows(UserRuleError);
    expect(error.code).toBe('USER_NAME_TAKEN');
    given(
      UserNameReservation,
      [
        { type: 'UserNameReserved', data: { userId: 'u1' } },
        { type: 'UserNameReleased', data: { userId: 'u1' } },
      ],
      { id: 'alice' },
    )
      .when((r) => r.reserve('u2'))
      .then([{ type: 'UserNameReserved', data: { userId: 'u2' } }]);
  });
});
