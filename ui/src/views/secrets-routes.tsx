import { grants } from '@rackseal/api-contracts';
import { decodedSegment, type Route } from '../router';
import { DeliveriesList } from './deliveries-list';
import { SecretPage } from './secret-page';
import { SecretsList } from './secrets-list';

/** Whether a location belongs to the secrets views (the navigation marks "Secrets" for all of them). */
export function isSecretsRoute(path: string): boolean {
  return path === '/secrets' || path.startsWith('/secrets/') || path === '/deliveries';
}

/** The secrets views: the list (/secrets), one secret (/secrets/NAME), deliveries by state (/deliveries?state=failed). */
export function SecretsRoutes({ route, scopes, onError }: { route: Route; scopes: readonly string[]; onError: (error: unknown) => void }) {
  if (!grants(scopes, 'secrets:read')) {
    // Said rather than asked: the API would refuse every call of these views.
    return (
      <>
        <h1>Secrets and rotations</h1>
        <p>Needs the secrets:read scope.</p>
      </>
    );
  }
  const secret = /^\/secrets\/(.+)$/.exec(route.path);
  if (secret?.[1] !== undefined) {
    const name = decodedSegment(secret[1]);
    if (name === undefined) {
      return (
        <p role="alert" class="error">
          Not a secret's address: {secret[1]}
        </p>
      );
    }
    return <SecretPage key={name} name={name} scopes={scopes} onError={onError} />;
  }
  if (route.path === '/deliveries') {
    return <DeliveriesList query={route.query} scopes={scopes} onError={onError} />;
  }
  return <SecretsList query={route.query} onError={onError} />;
}
