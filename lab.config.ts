/**
 * The example lab. `local` (the runner) is always present; container targets are added
 * by later milestones. Point LABWRIGHT_LAB at another file to run the examples elsewhere.
 */
import { defineLab } from 'labwright';

export default defineLab({
  defaults: { commandTimeout: 20_000 },
  local: { shell: { init: ['export LABWRIGHT_EXAMPLE=1'] } },
});
