// An unmodified @solana/web3.js 1.x + @solana/spl-token client against a localnet, as a new user
// would use it: only the HTTP URL is given (web3.js derives the websocket URL: port + 1).
// Usage: node check.mjs http://127.0.0.1:PORT   (prints one JSON line; exit 0 on success)
import {
  Connection, Keypair, LAMPORTS_PER_SOL, SystemProgram, Transaction, sendAndConfirmTransaction,
} from '@solana/web3.js';
import { createMint, getAccount, getOrCreateAssociatedTokenAccount, mintTo, transfer } from '@solana/spl-token';

const url = process.argv[2];
const connection = new Connection(url, 'confirmed');
const result = {};

const payer = Keypair.generate();
const airdrop = await connection.requestAirdrop(payer.publicKey, 2 * LAMPORTS_PER_SOL);
const latest = await connection.getLatestBlockhash();
const confirmed = await connection.confirmTransaction({ signature: airdrop, ...latest }, 'confirmed');
result.airdropErr = confirmed.value.err;
result.payerBalance = await connection.getBalance(payer.publicKey);

const recipient = Keypair.generate();
const transferSignature = await sendAndConfirmTransaction(
  connection,
  new Transaction().add(SystemProgram.transfer({
    fromPubkey: payer.publicKey, toPubkey: recipient.publicKey, lamports: 12_345_678,
  })),
  [payer],
);
result.transferSignature = transferSignature;
result.recipientBalance = await connection.getBalance(recipient.publicKey);

const slots = [];
const slotListener = connection.onSlotChange((info) => slots.push(info.slot));
const accountChanges = [];
const accountListener = connection.onAccountChange(recipient.publicKey, (account) => accountChanges.push(account.lamports), 'confirmed');

const mint = await createMint(connection, payer, payer.publicKey, null, 6);
const source = await getOrCreateAssociatedTokenAccount(connection, payer, mint, payer.publicKey);
await mintTo(connection, payer, mint, source.address, payer, 5_000_000);
const other = Keypair.generate();
const destination = await getOrCreateAssociatedTokenAccount(connection, payer, mint, other.publicKey);
await transfer(connection, payer, source.address, destination.address, payer, 1_250_000);
result.sourceAmount = (await getAccount(connection, source.address)).amount.toString();
result.destinationAmount = (await getAccount(connection, destination.address)).amount.toString();

await sendAndConfirmTransaction(
  connection,
  new Transaction().add(SystemProgram.transfer({
    fromPubkey: payer.publicKey, toPubkey: recipient.publicKey, lamports: 1_000_000,
  })),
  [payer],
);
for (let i = 0; i < 100 && accountChanges.length === 0; i++) await new Promise((r) => setTimeout(r, 50));
result.accountChanges = accountChanges;
result.slotsSeen = slots.length > 0;
await connection.removeSlotChangeListener(slotListener);
await connection.removeAccountChangeListener(accountListener);
console.log(JSON.stringify(result));
process.exit(0);
