import { grants, type OperatorSession } from '@rackseal/api-contracts';
import { useCallback, useEffect, useRef, useState } from 'preact/hooks';
import { api, ApiError, useCsrfToken } from './api';
import { decodedSegment, href, useRoute } from './router';
import { GroupPage } from './views/group-page';
import { GroupsList } from './views/groups-list';
import { AuditList } from './views/audit-list';
import { AuditRecordPage } from './views/audit-record';
import { MachinePage } from './views/machine-page';
import { MachinesList } from './views/machines-list';
import { Overview } from './views/overview';
import { isSecretsRoute, SecretsRoutes } from './views/secrets-routes';
import { SignIn } from './views/sign-in';

type SessionState = { readonly kind: 'loading' } | { readonly kind: 'signed-out'; readonly notice?: string } | { readonly kind: 'signed-in'; readonly session: OperatorSession };

/**
 * The dashboard: asks the operator API who the session cookie stands for, shows the sign-in form
 * when nobody, else the view of the URL. A 401 from any view (the session expired, its token was
 * revoked) brings the sign-in form back.
 */
export function App() {
  const [state, setState] = useState<SessionState>({ kind: 'loading' });
  const route = useRoute();

  useEffect(() => {
    api<OperatorSession>('GET', '/v1/session')
      .then((session) => {
        useCsrfToken(session.csrfToken);
        setState({ kind: 'signed-in', session });
      })
      .catch(() => setState({ kind: 'signed-out' }));
  }, []);

  const signedIn = useCallback((session: OperatorSession) => {
    useCsrfToken(session.csrfToken);
    setState({ kind: 'signed-in', session });
  }, []);

  const lost = useCallback((error: unknown) => {
    if (error instanceof ApiError && error.status === 401) {
      useCsrfToken(undefined);
      setState({ kind: 'signed-out', notice: 'Your session ended (expired, signed out, or its token was revoked). Sign in again.' });
    }
  }, []);

  const signOut = useCallback(async () => {
    try {
      await api('DELETE', '/v1/session');
    } finally {
      useCsrfToken(undefined);
      setState({ kind: 'signed-out', notice: 'Signed out.' });
    }
  }, []);

  if (state.kind === 'loading') {
    return <p class="loading">Loading…</p>;
  }
  if (state.kind === 'signed-out') {
    return <SignIn onSignedIn={signedIn} notice={state.notice} />;
  }
  const { session } = state;
  let view;
  const machine = /^\/machines\/(.+)$/.exec(route.path);
  const auditRecord = /^\/audit\/([1-9][0-9]{0,15})$/.exec(route.path);
  const group = /^\/groups(?:\/(.+))?$/.exec(route.path);
  const groupName = group?.[1] === undefined ? undefined : decodedSegment(group[1]);
  const serial = machine?.[1] === undefined ? undefined : decodedSegment(machine[1]);
  if (group !== null) {
    view =
      group[1] === undefined ? (
        <GroupsList onError={lost} />
      ) : groupName === undefined ? (
        <NotAnAddress what="group" segment={group[1]} />
      ) : (
        <GroupPage group={groupName} scopes={session.scopes} onError={lost} />
      );
  } else if (auditRecord?.[1] !== undefined) {
    view = <AuditRecordPage id={Number(auditRecord[1])} onError={lost} />;
  } else if (route.path === '/audit') {
    view = <AuditList query={route.query} onError={lost} />;
  } else if (machine?.[1] !== undefined) {
    view = serial === undefined ? <NotAnAddress what="machine" segment={machine[1]} /> : <MachinePage serial={serial} scopes={session.scopes} onError={lost} />;
  } else if (route.path === '/machines') {
    view = <MachinesList query={route.query} onError={lost} />;
  } else if (isSecretsRoute(route.path)) {
    view = <SecretsRoutes route={route} scopes={session.scopes} onError={lost} />;
  } else {
    view = <Overview onError={lost} />;
  }
  return (
    <>
      <a class="skip" href="#main" onClick={(event) => { event.preventDefault(); document.getElementById('main')?.focus(); }}>
        Skip to content
      </a>
      <header class="top">
        <span class="brand">rackseal fleet</span>
        <nav aria-label="Views">
          <ul>
            <li><a href={href('/')} aria-current={route.path === '/' ? 'page' : undefined}>Overview</a></li>
            <li><a href={href('/machines')} aria-current={route.path.startsWith('/machines') ? 'page' : undefined}>Machines</a></li>
            <li><a href={href('/secrets')} aria-current={isSecretsRoute(route.path) ? 'page' : undefined}>Secrets</a></li>
            {grants(session.scopes, 'policy:read') && <li><a href={href('/groups')} aria-current={route.path.startsWith('/groups') ? 'page' : undefined}>Groups</a></li>}
            {grants(session.scopes, 'audit:read') && <li><a href={href('/audit')} aria-current={route.path.startsWith('/audit') ? 'page' : undefined}>Audit</a></li>}
          </ul>
        </nav>
        <span class="who">
          Signed in as <strong>{session.tokenName}</strong> <span class="scopes">({session.scopes.join(', ')})</span>
        </span>
        <button type="button" onClick={() => void signOut()}>Sign out</button>
      </header>
      <Main routeKey={`${route.path}?${route.query.toString()}`}>{view}</Main>
    </>
  );
}

/** The view's container; moves focus to it on navigation so keyboard and screen-reader users land on the new page. */
function Main({ routeKey, children }: { routeKey: string; children: preact.ComponentChildren }) {
  const ref = useRef<HTMLElement>(null);
  const first = useRef(true);
  useEffect(() => {
    if (first.current) {
      first.current = false;
      return;
    }
    ref.current?.focus();
  }, [routeKey]);
  return (
    <main id="main" tabIndex={-1} ref={ref}>
      {children}
    </main>
  );
}

/** A machine's or group's URL whose name is not valid percent-encoding: said, instead of a page that throws. */
function NotAnAddress({ what, segment }: { what: 'machine' | 'group'; segment: string }) {
  return (
    <p role="alert" class="error">
      Not a {what}'s address: {segment}
    </p>
  );
}
