// Before any schema parses: no `new Function` (the CSP has no 'unsafe-eval',
// and zod's probe for it would be reported as a violation).
import { z } from 'zod';

z.config({ jitless: true });
