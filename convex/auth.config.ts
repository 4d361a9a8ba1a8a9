// Which tokens the deployment trusts (read by Convex when the functions are deployed).
//
// 1. The embedded backend's own tokens (`collab token mint`, docs/DECISIONS.md "Tokens"): ES256
//    JWTs whose issuer is `https://collab.local/<instance>` and audience `collab`, verified with
//    the backend's JWKS (its `/.well-known/jwks.json` URL, or a `data:` URI of that document so
//    the deployment needs no route to the machine). Set on the deployment:
//      COLLAB_JWT_ISSUER   https://collab.local/<instance id>
//      COLLAB_JWT_JWKS     https://host:port/.well-known/jwks.json or data:application/json;base64,...
// 2. Any OpenID Connect issuer a team uses (Clerk, Auth0, Google, ...). Set:
//      COLLAB_OIDC_DOMAIN          https://issuer.example.com
//      COLLAB_OIDC_APPLICATION_ID  the audience its tokens carry (default "collab")
// A provider whose variables are unset is left out. docs/CONVEX.md has the step-by-step.
import type { AuthConfig, AuthProvider } from "convex/server";

export const APPLICATION_ID = "collab";

type Env = Record<string, string | undefined>;

export function providersFrom(env: Env): AuthProvider[] {
  const providers: AuthProvider[] = [];
  const issuer = env.COLLAB_JWT_ISSUER?.trim();
  const jwks = env.COLLAB_JWT_JWKS?.trim();
  if (issuer && jwks) {
    providers.push({ type: "customJwt", issuer, jwks, algorithm: "ES256", applicationID: APPLICATION_ID });
  } else if (issuer || jwks) {
    throw new Error("set both COLLAB_JWT_ISSUER and COLLAB_JWT_JWKS (or neither) on the deployment");
  }
  const domain = env.COLLAB_OIDC_DOMAIN?.trim();
  if (domain) {
    providers.push({ domain, applicationID: env.COLLAB_OIDC_APPLICATION_ID?.trim() || APPLICATION_ID });
  }
  return providers;
}

export default { providers: providersFrom(process.env) } satisfies AuthConfig;
