-- Argo CD health of purchase-guard's kinds (Partner, CustomerAccount, ResellerDelegation,
-- PurchaseRestriction), from the kstatus conditions purchase-guard writes:
--   Degraded     Stalled=True: it will not get better without a change (a decision that is
--                not accepted, a broken verification Secret), with the reason and message;
--   Progressing  not reconciled yet for this generation, or Reconciling=True (a freeze under
--                way), or Ready=False;
--   Healthy      Ready=True. A restricted customer is healthy: being restricted is a state
--                purchase-guard reached, not a failure.
local hs = { status = "Progressing", message = "waiting for purchase-guard to reconcile this generation" }
if obj.status == nil or obj.metadata == nil or obj.status.observedGeneration == nil
    or obj.metadata.generation == nil or obj.status.observedGeneration ~= obj.metadata.generation then
  return hs
end
local found = {}
if obj.status.conditions ~= nil then
  for _, condition in ipairs(obj.status.conditions) do
    found[condition.type] = condition
  end
end
local function said(condition)
  local text = condition.reason or ""
  if condition.message ~= nil and condition.message ~= "" then
    text = text .. ": " .. condition.message
  end
  return text
end
if found["Stalled"] ~= nil and found["Stalled"].status == "True" then
  return { status = "Degraded", message = said(found["Stalled"]) }
end
if found["Reconciling"] ~= nil and found["Reconciling"].status == "True" then
  return { status = "Progressing", message = said(found["Reconciling"]) }
end
if found["Ready"] ~= nil then
  if found["Ready"].status == "True" then
    return { status = "Healthy", message = said(found["Ready"]) }
  end
  return { status = "Progressing", message = said(found["Ready"]) }
end
return hs
